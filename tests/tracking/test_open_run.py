"""Runs the writer thread creates (``tracking.open_run``): complete, in order, never silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from wxops import tracking
from wxops.errors import TrackingError


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("open_run")


@pytest.fixture()
def experiment(store: Path) -> str:
    tracking.connect(f"sqlite:///{store / 'mlflow.db'}")  # one store (and schema set-up) per module
    return tracking.ensure_experiment("open-run", (store / "artifacts").as_uri())


def test_a_run_created_by_the_writer_gets_everything_logged_before_it_existed(experiment: str) -> None:
    import mlflow

    with tracking.start_run(experiment, "pipeline") as parent:
        with tracking.open_run(experiment, "mlp", parent_run_id=parent, tags={"kind": "config"},
                               system_metrics=0.5) as run:
            assert run.key.startswith("pending-") or run.key == run.id
            on_epoch, flush = tracking.epoch_logger(run, interval=0.05)
            for epoch in range(30):
                on_epoch(epoch, 1.0 / (epoch + 1), 2.0 / (epoch + 1))
            flush()
            tracking.log_params({"hidden": 8, "password": "x"})
            tracking.log_metrics({"val_rmse": 0.5})
            tracking.set_tags({"stage": "trained"})
            tracking.log_dict({"a": 1}, "summary.json")  # an artifact needs the id: it waits for it
            assert tracking.active_run_id() == run.id
        with tracking.open_run(experiment, "ridge", parent_run_id=parent) as second:
            tracking.log_history(second, [{"train_loss": 1.0, "val_loss": None}])
    client = mlflow.MlflowClient()
    got = client.get_run(run.id)
    assert got.info.status == "FINISHED" and got.info.run_name == "mlp"
    assert got.data.tags["mlflow.parentRunId"] == parent and got.data.tags["kind"] == "config"
    assert got.data.tags["stage"] == "trained"
    assert got.data.params == {"hidden": "8", "password": "***"}
    assert got.data.metrics["val_rmse"] == 0.5
    assert [m.step for m in client.get_metric_history(run.id, "val_loss")] == list(range(30))
    assert any(key.startswith("system/") for key in got.data.metrics)
    assert "summary.json" in [a.path for a in client.list_artifacts(run.id)]
    assert client.get_run(second.id).data.tags["mlflow.parentRunId"] == parent
    assert [m.value for m in client.get_metric_history(second.id, "train_loss")] == [1.0]
    assert client.get_run(parent).info.status == "FINISHED"


def test_a_run_created_by_the_writer_is_failed_by_an_exception_inside(experiment: str) -> None:
    import mlflow

    with pytest.raises(RuntimeError, match="diverged"), tracking.open_run(experiment, "parent") as parent, \
            tracking.open_run(experiment, "mlp", parent_run_id=parent) as run:
        tracking.log_params({"lr": 0.1})
        raise RuntimeError("loss diverged")
    client = mlflow.MlflowClient()
    assert client.get_run(run.id).info.status == "FAILED"
    assert client.get_run(run.id).data.params == {"lr": "0.1"}
    assert client.get_run(run.id).data.tags["mlflow.parentRunId"] == parent.id
    assert client.get_run(parent.id).info.status == "FAILED"
    assert tracking.active_run_id() is None


def test_a_run_the_writer_could_not_create_is_raised_by_its_id_and_the_run_end(experiment: str) -> None:
    with pytest.raises(TrackingError, match="a tracking write failed"), \
            tracking.open_run("987654321", "nowhere") as run:
        with pytest.raises(TrackingError, match="run 'nowhere' was not created"):
            run.id  # noqa: B018 (the wait for the id is what is tested)
        tracking.log_params({"a": 1})
    assert tracking.active_run_id() is None


def test_a_run_skipped_after_an_earlier_failed_write_does_not_leave_its_id_waiting(experiment: str) -> None:
    with pytest.raises(TrackingError, match="a tracking write failed"), tracking.start_run(experiment, "run"):
        tracking.log_params({"a": 1})
        tracking.log_params({"a": 2})  # MLflow refuses to change a logged param
        with tracking.open_run(experiment, "child") as child, \
                pytest.raises(TrackingError, match="run 'child' was not created"):
            child.id  # noqa: B018 (the wait for the id is what is tested)
    assert tracking.active_run_id() is None
