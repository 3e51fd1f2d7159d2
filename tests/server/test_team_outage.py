"""Journey 2 of JOURNEYS.md, outage: the team server dies mid-run, ``wxops sync`` recovers.

Everything goes through the installed ``wxops`` command against a server of this module
(see :mod:`tests.server.team`). The server is SIGKILLed (by a loopback proxy that
watches the requests, see :mod:`tests.server.faults`) during training, during model
logging (the logged model exists on the server, its files do not) and during
registration (the version exists on the server, its alias does not). Each run finishes
into the outbox; after ``wxops server start`` brings the server back, ``wxops sync``
registers exactly one version with its lineage and metrics and runs the gate there; a
rerun works. The online half is ``test_team_journey.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.faults import killing_proxy
from tests.server.team import GOOD, PASSWORD, Team, project, running_team, wxops

pytestmark = [pytest.mark.slow, pytest.mark.service]


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, new_database) -> Iterator[Team]:  # type: ignore[no-untyped-def]
    with running_team(tmp_path_factory.mktemp("journey2-outage"), new_database) as t:
        yield t


@pytest.fixture
def as_alice(as_user):  # type: ignore[no-untyped-def]
    as_user("alice", PASSWORD)


#: kill point -> (request pattern, configurations)
OUTAGES = {
    # the gbm's loss history reaches the server; the ridge still has to train
    "training": (r"POST /api/2\.0/mlflow/runs/log-batch .*train_loss",
                 [*GOOD, {"name": "ridge", "type": "linear"}]),
    # the logged model exists on the server, its first file is on its way
    "model-logging": (r"PUT /api/2\.0/mlflow-artifacts/artifacts/.*/models/m-", GOOD),
    # the version exists on the server, its alias is not set yet
    "registration": (r"/api/2\.0/mlflow/registered-models/alias", GOOD),
}


@pytest.mark.parametrize("point", list(OUTAGES))
def test_server_killed_then_synced(team: Team, tmp_path: Path, point: str, as_alice) -> None:  # type: ignore[no-untyped-def]
    pattern, models = OUTAGES[point]
    name = f"outage-{point}"
    folder = project(tmp_path, name, models)
    with killing_proxy(team.port, team.state, pattern) as proxy:
        # no HTTP retries: the server is gone for good during this run (saves test time)
        run = wxops(team, "run", "-c", "wxops.yaml", "--quiet", cwd=folder, url=proxy.url,
                    MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
        assert proxy.killed, f"the run never sent {pattern}"
        assert run.returncode == 0, run.stdout + run.stderr
        assert "registered offline in the outbox" in run.stdout
        assert "unreachable" in run.stderr and "wxops sync" in run.stderr

        team.start()  # `wxops server start`: same database, same port
        synced = wxops(team, "sync", "-c", "wxops.yaml", cwd=folder)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert f"registered {name} v1" in synced.stdout and f"{name} version 1 is champion" in synced.stdout

        client = team.client()
        versions = client.search_model_versions(f"name='{name}'")
        assert [v.version for v in versions] == ["1"]  # never two for one registration
        mv = versions[0]
        assert client.get_registered_model(name).aliases == {"champion": "1"}
        run_info = client.get_run(mv.run_id)  # the configuration's run, with its metrics
        assert "val_rmse" in run_info.data.metrics and run_info.info.status == "FINISHED"
        pipeline = client.get_run(mv.tags["pipeline_run_id"])  # lineage: the pipeline run...
        assert pipeline.info.run_name == "pipeline"
        assert pipeline.data.tags["wxops.data_sha256"] == mv.tags["data_sha256"]  # ...and its data
        assert {"lineage.json", "qc_report.json"} <= {a.path for a in client.list_artifacts(pipeline.info.run_id)}
        history = wxops(team, "history", "-c", "wxops.yaml", cwd=folder)
        assert "promote" in history.stdout and "pass" in history.stdout, history.stdout
        import mlflow.sklearn

        before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(team.url)
        mlflow.set_registry_uri(team.url)
        try:
            assert hasattr(mlflow.sklearn.load_model(f"models:/{name}/1"), "predict")  # files complete
        finally:
            mlflow.set_tracking_uri(before[0])
            mlflow.set_registry_uri(before[1])

        again = wxops(team, "sync", "-c", "wxops.yaml", cwd=folder)
        assert again.returncode == 0 and "already complete" in again.stdout, again.stdout + again.stderr
        if point == "model-logging":  # the half-written model on the server does not trip a rerun
            rerun = wxops(team, "run", "-c", "wxops.yaml", "--quiet", cwd=folder)
            assert rerun.returncode == 0, rerun.stdout + rerun.stderr
            assert f"{name} version 2 [champion]" in rerun.stdout
