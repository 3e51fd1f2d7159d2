"""The background writes of wxops.tracking: in order, complete when the run ends, never silent."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wxops import tracking
from wxops.errors import TrackingError
from wxops.tracking.writer import Writer


def _store(tmp_path: Path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.connect(uri)
    return tracking.ensure_experiment("writer", (tmp_path / "art").as_uri())


def test_everything_is_stored_when_the_outermost_run_ends(tmp_path: Path) -> None:
    import mlflow

    exp = _store(tmp_path)
    with tracking.start_run(exp, "parent") as parent:
        tracking.log_params({"a": 1, "token": "x"})
        with tracking.start_run(exp, "child", parent_run_id=parent) as child:
            log, flush = tracking.metrics_logger(child, interval=0.05)
            for step in range(200):
                log(step, {"m1": step, "m2": -step})
            flush()
            tracking.set_tags({"k": "v"})
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(child, "m2")] == list(range(200))
    assert client.get_run(child).info.status == "FINISHED"
    assert client.get_run(child).data.tags["mlflow.parentRunId"] == parent
    assert client.get_run(parent).data.params == {"a": "1", "token": "***"}


def test_a_failed_background_write_is_raised_at_the_run_end(tmp_path: Path) -> None:
    exp = _store(tmp_path)
    with pytest.raises(TrackingError, match="a tracking write failed"), tracking.start_run(exp, "run"):
        tracking.log_params({"a": 1})
        tracking.log_params({"a": 2})  # MLflow refuses to change a logged param
    assert tracking.active_run_id() is None


def test_logging_outside_a_run_is_an_error(tmp_path: Path) -> None:
    _store(tmp_path)
    with pytest.raises(TrackingError, match="no active run"):
        tracking.log_params({"a": 1})


def test_a_run_over_mlflows_batch_limits_is_written_in_pieces(tmp_path: Path) -> None:
    """250 params, 150 tags and 2500 metric points in one run: MLflow takes at most 100
    params, 100 tags and 1000 entities per ``log_batch``."""
    import mlflow

    exp = _store(tmp_path)
    with tracking.start_run(exp, "big") as run_id:
        tracking.log_params({f"p{i:03d}": i for i in range(250)})
        tracking.set_tags({f"t{i:03d}": i for i in range(150)})
        log, flush = tracking.metrics_logger(run_id, interval=60.0)
        for step in range(1250):
            log(step, {"a": step, "b": -step})
        flush()
    run = mlflow.MlflowClient().get_run(run_id)
    assert len(run.data.params) == 250 and run.data.params["p249"] == "249"
    assert {f"t{i:03d}" for i in range(150)} <= set(run.data.tags)
    assert len(mlflow.MlflowClient().get_metric_history(run_id, "b")) == 1250


def test_connecting_again_ends_the_previous_writer_thread(tmp_path: Path) -> None:
    import threading

    def writers() -> int:
        return sum(t.name == "wxops-tracking-writer" for t in threading.enumerate())

    for i in range(2):
        tracking.connect(f"sqlite:///{tmp_path / f'{i}.db'}")
        exp = tracking.ensure_experiment("w", (tmp_path / f"art{i}").as_uri())
        with tracking.start_run(exp, "r"):
            tracking.log_params({"i": i})
        assert writers() == 1


def _slow_store(tmp_path: Path, seconds: float) -> tuple[str, Any, Callable[..., None]]:
    """A run in a real SQLite store whose ``log_batch`` takes at least ``seconds`` (a loaded
    machine or a slow server), and that log_batch."""
    import mlflow

    exp = _store(tmp_path)
    client = mlflow.MlflowClient()
    run_id = client.create_run(exp).info.run_id

    def log_batch(run: str, metrics: list[Any], params: list[Any], tags: list[Any]) -> None:
        time.sleep(seconds)
        client.log_batch(run, metrics=metrics, params=params, tags=tags)

    return run_id, client, log_batch


def test_live_writes_keep_to_their_share_of_time_and_lose_nothing(tmp_path: Path) -> None:
    from mlflow.entities import Metric

    run_id, client, log_batch = _slow_store(tmp_path, 0.05)
    writer = Writer(log_batch, budget=0.1)  # a >= 50 ms write: then >= 0.5 s without one
    try:
        start = time.monotonic()
        step = 0
        while time.monotonic() - start < 1.0:  # a point each 10 ms, each due after 10 ms
            writer.add(run_id, metrics=[Metric("loss", float(step), 0, step)], interval=0.01)
            step += 1
            time.sleep(0.01)
        writes = writer.live_writes
        writer.drain()
    finally:
        writer.close()
    assert 1 <= writes <= 3, writes  # ~20 at the bare 10 ms interval with a 50 ms write
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(step))


def test_a_job_comes_after_every_live_point_added_before_it(tmp_path: Path) -> None:
    from mlflow.entities import Metric

    run_id, client, log_batch = _slow_store(tmp_path, 0.0)
    seen: list[int] = []
    writer = Writer(log_batch)
    try:
        for step in range(50):  # due in a minute: only the job's order writes them now
            writer.add(run_id, metrics=[Metric("loss", float(step), 0, step)], interval=60.0)
        writer.submit(lambda: seen.extend(m.step for m in client.get_metric_history(run_id, "loss")))
        writer.drain()
    finally:
        writer.close()
    assert seen == list(range(50))


@pytest.mark.parametrize("budget", [0.0, -0.1, 1.5])
def test_a_write_budget_outside_0_to_1_is_refused(budget: float) -> None:
    with pytest.raises(ValueError, match="write budget must be a share of time"):
        Writer(lambda *_: None, budget=budget)
