"""Tracking overhead of training the three reference MLP configurations.

Three ways, same data, same seeds, one process, interleaved so machine noise hits all alike:
  off    - training only;
  wxops  - wxops tracking as the pipeline does it: a nested run per config with system
           metrics (1 s samples), created by the writer thread while the config trains
           (``tracking.open_run``, as ``wxops.models.task`` does), per-epoch train/val loss through the session's writer
           thread, params and final metrics (merged into one ``log_batch`` per run);
  async  - MLflow's own buffered asynchronous logging, logging the same: fluent nested
           runs with ``log_system_metrics=True`` (1 s samples), ``synchronous=False`` for
           every metric and param, ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=2`` (the
           batching interval wxops uses too);
  naive  - (``--naive``) synchronous per-call ``mlflow.log_metric``, the old baseline.
Model artifacts are not part of this comparison (saving a model is not training).

Printed: the best of ``--repeat`` of each, the ratios wxops/off (target <= 1.03) and
wxops/async (target <= 1.0), their spread over the interleaved rounds (min, median, max),
the same ratios of process CPU time (all threads), and wxops' own time: the training
thread's time outside training plus the writer thread's CPU time, over training untracked
(on a loaded machine, where other processes move wall and CPU times by more than the
3 % asked, this is the figure that says what tracking itself costs). Run it a few times
on a quiet machine: the load average is printed with the result.

``--quick`` (for a loaded or small machine, ~1-3 min): 2 rounds, each configuration cut
to 5 epochs, warm-up with 1 epoch. Fewer epochs weigh the fixed costs of a run (creating
it, its end) more, so quick ratios are if anything pessimistic.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

INTERVAL = 1.0  # system-metrics samples, both ways (wxops' default)
BUFFER_SECONDS = "2"  # MLflow's async buffer; wxops' per-epoch metrics interval is 2 s


@contextmanager
def _env(**values: str) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (best of)")
    parser.add_argument("--naive", action="store_true", help="also per-call synchronous logging")
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds of 5 epochs per configuration (a loaded machine)")
    args = parser.parse_args()
    if args.quick:
        args.repeat = min(args.repeat, 2)
    configure_process()
    import mlflow

    from wxops import tracking

    cfg = WxopsConfig()
    obs, _ = apply_qc(read_source(cfg.data), [cfg.features.target, *cfg.features.predictors], cfg.data.qc)
    table = build_features(obs, cfg.features)
    split = split_by_blocks(table.frame, cfg.split)
    full = [m for m in cfg.models if isinstance(m, MLPConfig)]
    mlps = [m.model_copy(update={"epochs": min(m.epochs, 5)}) for m in full] if args.quick else full
    warm = [m.model_copy(update={"epochs": 1}) for m in full] if args.quick else full
    derived: list[str] = list(cfg.features.derived)

    def off(mlps: list[MLPConfig] = mlps) -> None:
        for m in mlps:
            train_model(m, table, split, derived=derived, seed=cfg.seed)

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        tracking.connect(uri)
        exp = tracking.ensure_experiment("bench", Path(tmp).as_uri())

        own: list[tuple[float, float]] = []  # per pass: training thread outside training, writer CPU

        def with_wxops(mlps: list[MLPConfig] = mlps) -> None:
            writer_cpu: list[float] = []
            mark = lambda: writer_cpu.append(time.thread_time())  # noqa: E731 (runs on the writer)
            tracking.session.writer().submit(mark)
            start, training = time.perf_counter(), 0.0
            with tracking.start_run(exp, "pipeline") as parent:
                for m in mlps:
                    with tracking.open_run(exp, m.name, parent_run_id=parent,
                                           system_metrics=INTERVAL) as run:
                        on_epoch, flush = tracking.epoch_logger(run)
                        began = time.perf_counter()
                        result = train_model(m, table, split, derived=derived, seed=cfg.seed,
                                             on_epoch=on_epoch)
                        training += time.perf_counter() - began
                        flush()
                        tracking.log_params(result.params)
                        tracking.log_metrics(result.metrics)
            outside = time.perf_counter() - start - training
            tracking.session.writer().submit(mark)
            tracking.session.drain()
            own.append((outside, writer_cpu[1] - writer_cpu[0]))

        def mlflow_async(mlps: list[MLPConfig] = mlps) -> None:
            with _env(MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=BUFFER_SECONDS,
                      MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL=str(INTERVAL)):
                mlflow.set_tracking_uri(uri)
                with mlflow.start_run(experiment_id=exp, run_name="pipeline"):
                    for m in mlps:
                        with mlflow.start_run(experiment_id=exp, run_name=m.name, nested=True,
                                              log_system_metrics=True):
                            def log(epoch: int, train: float, val: float | None) -> None:
                                values = {"train_loss": train} if val is None else {
                                    "train_loss": train, "val_loss": val}
                                mlflow.log_metrics(values, step=epoch, synchronous=False)
                            result = train_model(m, table, split, derived=derived, seed=cfg.seed,
                                                 on_epoch=log)
                            mlflow.log_params(result.params, synchronous=False)
                            mlflow.log_metrics(result.metrics, synchronous=False)

        def naive(mlps: list[MLPConfig] = mlps) -> None:
            mlflow.set_tracking_uri(uri)
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

        modes: dict[str, Callable[..., None]] = {"off": off, "wxops": with_wxops, "async": mlflow_async}
        if args.naive:
            modes["naive"] = naive
        for fn in modes.values():  # warm-up: imports, first torch allocation, store caches
            fn(warm)
        times: dict[str, list[float]] = {name: [] for name in modes}
        cpu: dict[str, list[float]] = {name: [] for name in modes}
        load_before = os.getloadavg()
        for _ in range(args.repeat):
            for name, fn in modes.items():
                start = time.process_time()
                times[name].append(time_call(fn))
                cpu[name].append(time.process_time() - start)
        load_after = os.getloadavg()
    best = {name: min(t) for name, t in times.items()}
    wx_off, wx_async = best["wxops"] / best["off"], best["wxops"] / best["async"]
    print(f"3 MLP configs, {sum(m.epochs for m in mlps)} epochs in all{' (--quick)' if args.quick else ''}, "
          f"best of {args.repeat} each; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"({os.cpu_count()} CPUs)")
    labels = {"off": "tracking off", "wxops": "wxops tracking", "async": "MLflow buffered async",
              "naive": "MLflow per-call sync"}
    for name, value in best.items():
        print(f"{labels[name] + ':':24s}{value:6.2f} s  ratio to off {value / best['off']:.3f}")
    print(f"ratio wxops/off: {wx_off:.3f} (target <= 1.03) -> {'PASS' if wx_off <= 1.03 else 'FAIL'}")
    print(f"ratio wxops/mlflow-buffered-async: {wx_async:.3f} (target <= 1.0) -> "
          f"{'PASS' if wx_async <= 1.0 else 'FAIL'}")
    rounds = zip(times["off"], times["wxops"], times["async"], strict=True)
    print("per round wxops/off, wxops/async: " + ", ".join(
        f"{w / o:.3f}/{w / a:.3f}" for o, w, a in rounds))
    for label, runs in (("wall", times), ("cpu", cpu)):
        for base in ("off", "async"):
            ratios = [w / b for w, b in zip(runs["wxops"], runs[base], strict=True)]
            print(f"{label} wxops/{base} over rounds: min {min(ratios):.3f}, "
                  f"median {statistics.median(ratios):.3f}, max {max(ratios):.3f}")
    outside = statistics.median(o for o, _ in own[-args.repeat:])
    writer = statistics.median(w for _, w in own[-args.repeat:])
    print(f"wxops' own time per pass (median): {outside * 1000:.0f} ms on the training thread "
          f"outside training (run starts, epoch callbacks, run ends, final drain), "
          f"{writer * 1000:.0f} ms CPU of the writer thread; "
          f"(off + both) / off = {(best['off'] + outside + writer) / best['off']:.3f} "
          f"(what tracking itself spends, less sensitive to the machine's load than wall time)")
    print("process CPU s per pass (median): " + ", ".join(
        f"{labels[name]} {statistics.median(values):.2f}" for name, values in cpu.items()))


if __name__ == "__main__":
    main()
