"""Tracking to the real team server: wxops's batched async logging vs per-call `mlflow.log_metric`.

The script starts its own team server (``wxops.server``: MLflow with basic auth on a
fresh temporary PostgreSQL database, proxied artifacts) on a free loopback port, then
trains the 3 reference MLP configurations x 50 epochs on the reference data (real PyTorch epochs),
logging 10 metrics per epoch, three ways, interleaved, best of ``--repeat``:

  off    - the same training, tracking off;
  wxops  - a pipeline run with a nested run per config (params, 10 metrics per epoch
           through ``tracking.metrics_logger``: a queue put, one ``log_batch`` per wake-up);
  naive  - MLflow's fluent API with one synchronous ``mlflow.log_metric`` per point.

Printed, from the same run:
  logging speed-up  = naive extra wall time / wxops extra wall time over tracking off
                      (target >= 10x); also the time spent inside the per-epoch callbacks;
  wxops overhead    = wxops wall / off wall - 1 (target <= 5 %), best of each mode, and
                      the ratio per interleaved repeat.
Also, from the end of training to a registered version (``tracking.log_model`` of a
trained model in its run, then ``tracking.register_model`` as the pipeline does it), on
the team server against the embedded store (SQLite + local artifact folder), interleaved,
best of ``--repeat``: the ratio server/embedded. ``--registration-only`` measures just that.
Needs PostgreSQL on 127.0.0.1:5432 (trust auth); the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

PG = "postgresql://postgres@127.0.0.1:5432"
N_METRICS = 10
EPOCHS = 50


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ten(train: float, val: float | None) -> dict[str, float]:
    """Ten per-epoch metrics derived from the losses (what a real loop logs: losses, RMSEs, ...)."""
    v = train if val is None else val
    return {"train_loss": train, "val_loss": v, "train_rmse": math.sqrt(train), "val_rmse": math.sqrt(v),
            "gap": v - train, "ratio": v / train if train else 0.0, "log_train": math.log1p(train),
            "log_val": math.log1p(v), "lr": 1e-3, "grad_scale": 1.0}


class Timed:
    """Wraps the per-epoch callback so each mode's pure compute time is known."""

    def __init__(self, log: Callable[[int, float, float | None], None]) -> None:
        self.log = log
        self.logging = 0.0

    def __call__(self, epoch: int, train: float, val: float | None) -> None:
        start = time.perf_counter()
        self.log(epoch, train, val)
        self.logging += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--registration-only", action="store_true",
                        help="only the end-of-training -> registered version comparison")
    args = parser.parse_args()

    import signal
    import sys

    from wxops.startup import configure_process

    # a `kill` or `timeout` still runs the finally below: the server and database go away
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configure_process()
    import mlflow
    import psycopg
    import torch

    # The server runs on the same machine here. With torch's default of one intra-op thread
    # per core, every epoch waits for whichever core the server (or anything else) is busy
    # on, and the comparison would measure CPU contention, not logging. One thread for all
    # three modes alike (also the faster setting for an MLP this small).
    torch.set_num_threads(1)

    from wxops import WxopsConfig, tracking
    from wxops.config import MLPConfig
    from wxops.data.qc import apply_qc
    from wxops.data.sources import read_source
    from wxops.features import build_features
    from wxops.models.train import train_model
    from wxops.server.process import ServerSettings, start_server, stop_server
    from wxops.split import split_by_blocks

    cfg = WxopsConfig()
    obs, _ = apply_qc(read_source(cfg.data), [cfg.features.target, *cfg.features.predictors], cfg.data.qc)
    table = build_features(obs, cfg.features)
    split = split_by_blocks(table.frame, cfg.split)
    # the reference configurations (mlp-small, mlp-wide, mlp-fast), 50 epochs each
    mlps = [m.model_copy(update={"epochs": EPOCHS, "device": "cpu"})
            for m in cfg.models if isinstance(m, MLPConfig)]
    derived: list[str] = list(cfg.features.derived)

    dbname = f"wxops_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServerSettings(backend=f"{PG}/{dbname}", artifacts=str(Path(tmp) / "artifacts"),
                                  port=_free_port(), state_dir=str(Path(tmp) / "state"), workers=2)
        info = start_server(settings)
        try:
            os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
            os.environ["MLFLOW_TRACKING_PASSWORD"] = (Path(tmp) / "state" / "admin_password").read_text().strip()
            registration = _registration(info.url, Path(tmp), table, split, derived, cfg.seed, args.repeat,
                                         train_model, tracking)
            results = None
            if not args.registration_only:
                tracking.connect(info.url, outbox=Path(tmp) / "outbox")
                exp = tracking.ensure_experiment("bench", None)
                results = _measure(mlps, table, split, derived, cfg.seed, exp, args.repeat, train_model,
                                   tracking, mlflow)
                assert not tracking.is_offline()
        finally:
            stop_server(settings.state())
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    if results is not None:
        _report(results, info.url)
    server, embedded = min(registration["server"]), min(registration["embedded"])
    print(f"end of training -> registered version (log model + register), best of {args.repeat}: "
          f"team server {server:.2f} s, embedded SQLite {embedded:.2f} s -> ratio {server / embedded:.2f}x; "
          "per repeat: " + ", ".join(f"{a / b:.2f}" for a, b in zip(registration["server"],
                                                                      registration["embedded"], strict=True)))


def _registration(url: str, tmp: Path, table: Any, split: Any, derived: list[str], seed: int, repeat: int,
                  train_model: Any, tracking: Any) -> dict[str, list[float]]:
    """Seconds from a trained model to its registered version, per store, interleaved."""
    from wxops.config import LinearConfig
    from wxops.models.task import input_example

    trained = train_model(LinearConfig(name="ridge", type="linear"), table, split, derived=derived, seed=seed)
    example = input_example(split.train[table.inputs])
    stores = {"server": (url, None), "embedded": (f"sqlite:///{tmp / 'embedded.db'}", (tmp / "art").as_uri())}
    out: dict[str, list[float]] = {name: [] for name in stores}
    for i in range(repeat):
        for name, (uri, root) in stores.items():
            tracking.connect(uri, outbox=tmp / "outbox")
            exp = tracking.ensure_experiment("bench-registration", root)
            started = time.perf_counter()
            with tracking.start_run(exp, f"ridge-{i}") as run_id:
                model_uri = tracking.log_model(trained.model, "model", input_example=example,
                                               pip_requirements=["scikit-learn"])
            tracking.register_model(model_uri, "bench", tags={"repeat": str(i)}, run_id=run_id,
                                    first_as_champion=False)
            out[name].append(time.perf_counter() - started)
            assert not tracking.is_offline()
            print(f"  registration on {name}: {out[name][-1]:.2f} s", flush=True)
    return out


def _measure(mlps: list[Any], table: Any, split: Any, derived: list[str], seed: int, exp: str, repeat: int,
             train_model: Any, tracking: Any, mlflow: Any) -> dict[str, list[tuple[float, float]]]:
    """(wall, seconds inside the per-epoch callbacks) of each mode, one per repeat."""

    def off() -> float:
        for m in mlps:
            train_model(m, table, split, derived=derived, seed=seed)
        return 0.0

    def with_wxops() -> float:
        logging_time = 0.0
        with tracking.start_run(exp, "pipeline") as parent:
            tracking.log_params({"n_configs": len(mlps), "epochs": EPOCHS})
            for m in mlps:
                with tracking.start_run(exp, m.name, parent_run_id=parent) as run_id:
                    log, flush = tracking.metrics_logger(run_id)
                    def ten(epoch: int, train: float, val: float | None, _log: Any = log) -> None:
                        _log(epoch, _ten(train, val))

                    timed = Timed(ten)
                    result = train_model(m, table, split, derived=derived, seed=seed, on_epoch=timed)
                    logging_time += timed.logging
                    flush()
                    tracking.log_params(result.params)
                    tracking.log_metrics(result.metrics)
        return logging_time

    def naive() -> float:
        logging_time = 0.0
        with mlflow.start_run(experiment_id=exp, run_name="pipeline"):
            mlflow.log_params({"n_configs": len(mlps), "epochs": EPOCHS})
            for m in mlps:
                with mlflow.start_run(experiment_id=exp, run_name=m.name, nested=True):
                    def log(epoch: int, train: float, val: float | None) -> None:
                        for key, value in _ten(train, val).items():
                            mlflow.log_metric(key, value, step=epoch)
                    timed = Timed(log)
                    result = train_model(m, table, split, derived=derived, seed=seed, on_epoch=timed)
                    logging_time += timed.logging
                    mlflow.log_params(result.params)
                    mlflow.log_metrics(result.metrics)
        return logging_time

    modes = {"off": off, "wxops": with_wxops, "naive": naive}
    off()  # warm-up: imports, first torch allocations
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
    for _ in range(repeat):  # interleaved, so machine noise hits every mode alike
        for name, fn in modes.items():
            start = time.perf_counter()
            in_callbacks = fn()
            wall = time.perf_counter() - start
            print(f"  {name}: {wall:.2f} s", flush=True)
            runs[name].append((wall, in_callbacks))
    return runs


def _report(runs: dict[str, list[tuple[float, float]]], url: str) -> None:
    import statistics

    best = {name: min(values) for name, values in runs.items()}
    off, wx, naive = best["off"][0], best["wxops"][0], best["naive"][0]
    cost_wx, cost_naive = max(wx - off, 1e-3), naive - off
    speedup = cost_naive / cost_wx
    overhead = wx / off - 1
    points = 3 * EPOCHS * N_METRICS
    print(f"team server {url} (MLflow basic-auth on PostgreSQL); 3 configs x {EPOCHS} epochs x "
          f"{N_METRICS} metrics = {points} points per mode; best wall of each mode")
    print(f"tracking off: {off:.2f} s   wxops: {wx:.2f} s   naive per-call log_metric: {naive:.2f} s "
          f"({cost_naive / points * 1000:.1f} ms a call)")
    print(f"logging speed-up wxops vs naive (extra wall time over off): {speedup:.1f}x "
          f"(target >= 10x) -> {'PASS' if speedup >= 10 else 'FAIL'}")
    in_wx, in_naive = best["wxops"][1], best["naive"][1]
    print(f"time the training thread spent in per-epoch logging: wxops {in_wx * 1000:.1f} ms, naive "
          f"{in_naive * 1000:.0f} ms (ratio {in_naive / max(in_wx, 1e-6):.0f}x)")
    print(f"wxops overhead over tracking off: {overhead * 100:+.1f} % (ratio {wx / off:.3f}, target <= 5 %) "
          f"-> {'PASS' if overhead <= 0.05 else 'FAIL'}")
    paired = [w[0] / o[0] for w, o in zip(runs["wxops"], runs["off"], strict=True)]
    print(f"wxops/off per interleaved repeat: {', '.join(f'{r:.3f}' for r in paired)} "
          f"(median {statistics.median(paired):.3f}; the spread is this machine's noise)")


if __name__ == "__main__":
    main()
