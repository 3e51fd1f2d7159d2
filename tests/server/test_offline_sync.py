"""Offline-first tracking: the server dies mid-training, the run completes into the outbox,
`wxops sync` uploads it after a restart, and every metric point arrives exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import small_config_dict, write_config
from tests.server.conftest import Server, make_server
from wxops.cli import app
from wxops.progress import SilentReporter

runner = CliRunner()
KILL_AT = 4
EPOCHS = 12


class KillingReporter(SilentReporter):
    """Silent, except that it kills the server (whole process group, SIGKILL) at one epoch."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.killed = False

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield

    def skip(self, name: str, why: str) -> None:
        return None

    def info(self, message: str) -> None:
        return None

    def epochs(self, name: str, total: int) -> Callable[[int, float, float | None], None]:
        def on_epoch(epoch: int, train: float, val: float | None) -> None:
            if epoch == KILL_AT and not self.killed:
                import json

                # The run is created by a background writer while the model trains; on a
                # slow machine epoch KILL_AT can come first. Kill only once the server holds
                # the run, so the kill falls mid-training of a run the server knows.
                self._wait_for_remote_run(name)
                pid = json.loads((self.server.state / "server.json").read_text())["pid"]
                os.killpg(pid, signal.SIGKILL)
                self.killed = True
        return on_epoch

    def _wait_for_remote_run(self, name: str, timeout: float = 60.0) -> None:
        import time

        import mlflow

        client = mlflow.MlflowClient(tracking_uri=self.server.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            experiment = client.get_experiment_by_name("offline-test")
            if experiment is not None and client.search_runs(
                    [experiment.experiment_id], filter_string=f"attributes.run_name = '{name}'"):
                return
            time.sleep(0.1)
        raise AssertionError(f"the server never saw run {name!r} within {timeout:.0f} s")


def _histories(client, run_id: str) -> dict[str, list[tuple[int, int, float]]]:  # type: ignore[no-untyped-def]
    run = client.get_run(run_id)
    return {key: sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))
            for key in run.data.metrics}


@pytest.mark.service
@pytest.mark.slow
def test_server_killed_mid_training_then_synced(tmp_path: Path, new_database, as_user, caplog) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from wxops.config import parse_config
    from wxops.outbox import REMOTE_RUN_TAG, default_outbox, outbox_uri
    from wxops.pipeline import run_pipeline

    server = make_server(tmp_path / "srv", new_database())
    server.start()
    try:
        as_user("admin", server.admin_password)
        raw = small_config_dict(models=[
            {"name": "mlp", "type": "mlp", "hidden_dim": 8, "epochs": EPOCHS, "batch_size": 256},
            {"name": "ridge", "type": "linear"},
        ])
        raw["tracking"] = {"uri": server.url, "experiment": "offline-test"}
        project = tmp_path / "project"
        write_config(project, raw)
        reporter = KillingReporter(server)
        with caplog.at_level("WARNING", logger="wxops.tracking"):
            result = run_pipeline(parse_config(raw), project_dir=project, use_cache=False, reporter=reporter)
        assert reporter.killed
        warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1  # told once
        outbox = default_outbox(project)
        local = mlflow.MlflowClient(tracking_uri=outbox_uri(outbox))
        local_runs = {r.info.run_name: r for r in local.search_runs(
            [e.experiment_id for e in local.search_experiments()])}
        assert {"pipeline", "mlp", "ridge"} <= set(local_runs)
        mlp_local = local_runs["mlp"]
        remote_mlp = mlp_local.data.tags[REMOTE_RUN_TAG]  # the run went on where the server left it
        assert remote_mlp
        assert result.version  # the whole pipeline finished, registration included (in the outbox)

        server.start()  # same database, same port: the server is back
        first = runner.invoke(app, ["sync", "--outbox", str(outbox)], catch_exceptions=False)
        assert first.exit_code == 0, first.output
        assert "synced 3 run(s)" in first.output
        remote = mlflow.MlflowClient(tracking_uri=server.url)

        for name, run in local_runs.items():
            rid = run.data.tags.get(REMOTE_RUN_TAG) or remote.search_runs(
                [remote.get_experiment_by_name("offline-test").experiment_id],
                filter_string=f"tags.`wxops.offline_run_id` = '{run.info.run_id}'")[0].info.run_id
            mine, theirs = _histories(local, run.info.run_id), _histories(remote, rid)
            for key, points in mine.items():
                assert set(points) <= set(theirs[key]), (name, key)
            remote_run = remote.get_run(rid)
            assert remote_run.info.status == "FINISHED", name
            for key, value in run.data.params.items():
                assert remote_run.data.params[key] == value
        # every epoch of the MLP, before and after the kill, exactly once on the server
        mlp_remote = _histories(remote, remote_mlp)
        for key in ("train_loss", "val_loss"):
            assert [p[0] for p in mlp_remote[key]] == list(range(EPOCHS)), key
        # the logged model and the registration arrived
        versions = mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url).search_model_versions(
            "name='visibility'")
        assert len(versions) == 1 and versions[0].run_id
        loaded = mlflow.sklearn.load_model(f"models:/visibility/{versions[0].version}")
        assert hasattr(loaded, "predict")

        before = {k: len(v) for k, v in mlp_remote.items()}
        second = runner.invoke(app, ["sync", "--outbox", str(outbox)], catch_exceptions=False)
        assert second.exit_code == 0 and "already complete" in second.output, second.output
        assert {k: len(v) for k, v in _histories(remote, remote_mlp).items()} == before
        assert len(remote.search_runs([remote.get_experiment_by_name("offline-test").experiment_id])) == 3

        # an interrupted sync resumes: forget the state file, nothing is uploaded twice
        (outbox / "sync-state.json").unlink()
        third = runner.invoke(app, ["sync", "--outbox", str(outbox)], catch_exceptions=False)
        assert third.exit_code == 0 and "0 new metric point(s)" in third.output, third.output
        assert {k: len(v) for k, v in _histories(remote, remote_mlp).items()} == before
        assert len(remote.search_runs([remote.get_experiment_by_name("offline-test").experiment_id])) == 3
    finally:
        server.stop()


def test_sync_with_nothing_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sync", "--outbox", str(tmp_path / "none")], catch_exceptions=False)
    assert result.exit_code == 0 and "nothing to sync" in result.output


def test_sync_of_a_corrupt_outbox_is_refused(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "mlflow.db").write_bytes(b"this is not sqlite" * 100)
    result = runner.invoke(app, ["sync", "--outbox", str(outbox)], catch_exceptions=False)
    assert result.exit_code == 1 and "not a readable MLflow store" in result.output


def test_sync_with_damaged_state_is_refused(tmp_path: Path) -> None:
    import mlflow

    from wxops.outbox import outbox_uri

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "sync-state.json").write_text("[1, 2")
    mlflow.MlflowClient(tracking_uri=outbox_uri(outbox)).search_experiments()
    result = runner.invoke(app, ["sync", "--outbox", str(outbox)], catch_exceptions=False)
    assert result.exit_code == 1 and "sync-state.json is damaged" in result.output


def test_offline_run_without_target_needs_to(tmp_path: Path) -> None:
    import mlflow

    from wxops.outbox import outbox_uri

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    client = mlflow.MlflowClient(tracking_uri=outbox_uri(outbox))
    client.create_run(client.create_experiment("x", artifact_location=(outbox / "a").as_uri()))
    result = runner.invoke(app, ["sync", "--outbox", str(outbox)], catch_exceptions=False)
    assert result.exit_code == 1 and "give --to URL" in result.output
