"""The per-epoch logger: every point reaches the store, in order, and failures are not silent."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from wxops import tracking
from wxops.errors import TrackingError


@pytest.fixture()
def experiment(tmp_path: Path) -> str:
    tracking.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tracking.ensure_experiment("epochs", (tmp_path / "artifacts").as_uri())


def test_points_arrive_in_order_with_steps(experiment: str) -> None:
    with tracking.start_run(experiment, "mlp") as run_id:
        on_epoch, flush = tracking.epoch_logger(run_id, interval=0.05)
        for epoch in range(1200):  # over MLflow's 1000 metrics per batch
            on_epoch(epoch, 1.0 / (epoch + 1), None if epoch % 2 else 2.0 / (epoch + 1))
            if epoch == 600:
                time.sleep(0.2)  # let an interval pass: a write happens mid-training
        flush()
    client = MlflowClient()
    train = client.get_metric_history(run_id, "train_loss")
    val = client.get_metric_history(run_id, "val_loss")
    assert [m.step for m in train] == list(range(1200))
    assert [m.value for m in train] == pytest.approx([1.0 / (e + 1) for e in range(1200)])
    assert [m.step for m in val] == list(range(0, 1200, 2))


def test_points_are_written_before_flush_once_the_interval_passes(experiment: str) -> None:
    with tracking.start_run(experiment, "mlp") as run_id:
        on_epoch, flush = tracking.epoch_logger(run_id, interval=0.1)
        on_epoch(0, 0.5, 0.6)
        deadline = time.monotonic() + 10
        while not MlflowClient().get_metric_history(run_id, "train_loss"):
            assert time.monotonic() < deadline, "the point never reached the store before flush"
            time.sleep(0.05)
        flush()


def test_a_failed_write_is_raised_by_flush(experiment: str) -> None:
    with tracking.start_run(experiment, "mlp") as run_id:
        pass
    MlflowClient().delete_run(run_id)  # writes to a deleted run are refused by MLflow
    on_epoch, flush = tracking.epoch_logger(run_id, interval=0.01)
    on_epoch(0, 0.5, 0.6)
    with pytest.raises(TrackingError, match=run_id):
        flush()
    assert mlflow.active_run() is None
