"""Tracking overhead of training the three reference MLP configurations.

Three ways, same data, same seeds, one process:
  off    - training only;
  wxops  - wxops tracking: a nested run per config, params, per-epoch train/val loss
           batched per epoch by wxops's background writer, final metrics (target: <= 5 % over off);
  naive  - the same with synchronous per-call `mlflow.log_metric` (~3-4 ms a call).
Model artifacts are not part of this comparison (saving a model is not training).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import time_call

from wxops import WxopsConfig
from wxops.config import MLPConfig
from wxops.data.qc import apply_qc
from wxops.data.sources import read_source
from wxops.features import build_features
from wxops.models.train import train_model
from wxops.split import split_by_blocks
from wxops.startup import configure_process


def main() -> None:
    configure_process()
    import mlflow

    from wxops import tracking

    cfg = WxopsConfig()
    obs, _ = apply_qc(read_source(cfg.data), [cfg.features.target, *cfg.features.predictors], cfg.data.qc)
    table = build_features(obs, cfg.features)
    split = split_by_blocks(table.frame, cfg.split)
    mlps = [m for m in cfg.models if isinstance(m, MLPConfig)]
    derived = list(cfg.features.derived)

    def off() -> None:
        for m in mlps:
            train_model(m, table, split, derived=derived, seed=cfg.seed)

    with tempfile.TemporaryDirectory() as tmp:
        tracking.connect(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        exp = tracking.ensure_experiment("bench", Path(tmp).as_uri())

        def with_wxops() -> None:
            with tracking.start_run(exp, "pipeline") as parent:
                for m in mlps:
                    with tracking.start_run(exp, m.name, parent_run_id=parent) as run_id:
                        on_epoch, flush = tracking.epoch_logger(run_id)
                        result = train_model(m, table, split, derived=derived, seed=cfg.seed, on_epoch=on_epoch)
                        flush()
                        tracking.log_params(result.params)
                        tracking.log_metrics(result.metrics)

        def naive() -> None:
            with mlflow.start_run(experiment_id=exp):
                for m in mlps:
                    with mlflow.start_run(experiment_id=exp, nested=True):
                        def log(epoch: int, train: float, val: float | None) -> None:
                            mlflow.log_metric("train_loss", train, step=epoch)
                            if val is not None:
                                mlflow.log_metric("val_loss", val, step=epoch)
                        result = train_model(m, table, split, derived=derived, seed=cfg.seed, on_epoch=log)
                        for k, v in result.params.items():
                            mlflow.log_param(k, v)
                        for k, v in result.metrics.items():
                            mlflow.log_metric(k, v)

        off()  # warm-up: imports, first torch allocation
        with_wxops()
        t_off, t_wx, t_naive = [], [], []
        for _ in range(5):  # interleaved so machine noise hits all three alike
            t_off.append(time_call(off))
            t_wx.append(time_call(with_wxops))
            t_naive.append(time_call(naive))
    best_off, best_wx, best_naive = min(t_off), min(t_wx), min(t_naive)
    overhead = best_wx / best_off - 1
    print(f"3 MLP configs, {sum(m.epochs for m in mlps)} epochs in all (best of 5 each)")
    print(f"tracking off:        {best_off:.2f} s")
    print(f"wxops tracking:      {best_wx:.2f} s  overhead {overhead * 100:+.1f} % "
          f"(target <= 5 %) -> {'PASS' if overhead <= 0.05 else 'FAIL'}")
    print(f"naive sync logging:  {best_naive:.2f} s  overhead {(best_naive / best_off - 1) * 100:+.1f} %")
    print(f"ratio wxops/off: {best_wx / best_off:.3f}   ratio wxops/naive: {best_wx / best_naive:.3f}")


if __name__ == "__main__":
    main()
