"""Journey 2 of JOURNEYS.md: the team server, online and through an outage, as a user runs it.

Everything goes through the installed ``wxops`` command in fresh project folders: one
server per module started with ``wxops server start`` on a fresh PostgreSQL database,
a user made with ``wxops server add-user`` and logged in with ``wxops login`` (the
credentials file in a temporary HOME is all the later commands get).

Online: ``wxops run`` registers, gates and promotes on the server; ``wxops verify`` with
no ``--model`` verifies the newest version; ``wxops serve --tracking-uri`` serves the
champion; a worse configuration is rejected with exit code 6 by ``wxops run``,
``wxops verify`` and ``wxops promote``; ``wxops history --at`` names the champion.

Outage: the server is SIGKILLed (by a loopback proxy that watches the requests, see
:mod:`tests.server.faults`) during training, during model logging (the logged model
exists on the server, its files do not) and during registration (the version exists on
the server, its alias does not). Each run finishes into the outbox; after
``wxops server start`` brings the server back, ``wxops sync`` registers exactly one
version with its lineage and metrics and runs the gate there; a rerun works.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.serve.conftest import example_frame
from tests.server.conftest import free_port
from tests.server.faults import killing_proxy

pytestmark = [pytest.mark.slow, pytest.mark.service]

WXOPS = str(Path(sys.executable).parent / "wxops")
PASSWORD = "alice-journey-password-2"
TOKEN = "predict-journey-token-0123456789"
GOOD = [{"name": "gbm-short", "type": "gradient_boosting", "max_iter": 10}]
DEGRADED = [{"name": "mlp-one-epoch", "type": "mlp", "epochs": 1, "learning_rate": 1e-5, "hidden_dim": 4}]


@dataclass
class Team:
    url: str
    port: int
    home: Path
    state: Path
    backend: str

    def env(self, url: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WXOPS_"))}
        env.update(HOME=str(self.home), MLFLOW_TRACKING_URI=url or self.url, NO_PROXY="127.0.0.1,localhost",
                   COLUMNS="200")
        return env

    def start(self) -> None:
        done = wxops(self, "server", "start", "--backend", self.backend, "--port", str(self.port),
                     "--workers", "1", "--state-dir", str(self.state), cwd=self.home)
        assert done.returncode == 0, done.stderr

    def client(self) -> Any:
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.url, registry_uri=self.url)


def wxops(team: Team, *args: str, cwd: Path, url: str | None = None, stdin: str | None = None,
          timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WXOPS, *args], cwd=cwd, env={**team.env(url), **extra_env}, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def project(root: Path, name: str, models: list[dict[str, Any]]) -> Path:
    folder = root / name
    folder.mkdir(exist_ok=True)
    (folder / "wxops.yaml").write_text(yaml.safe_dump({
        "seed": 7, "models": models, "gate": {"bootstrap_samples": 200},
        "tracking": {"experiment": name, "registered_model": name}}))
    return folder


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, new_database) -> Iterator[Team]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("journey2")
    (root / "home").mkdir()
    port = free_port()
    t = Team(f"http://127.0.0.1:{port}", port, root / "home", root / "state", new_database())
    t.start()
    try:
        made = wxops(t, "server", "add-user", "alice", "--password-stdin", "--state-dir", str(t.state),
                     cwd=t.home, stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        login = wxops(t, "login", t.url, "-u", "alice", "--password-stdin", cwd=t.home, stdin=PASSWORD + "\n")
        assert login.returncode == 0, login.stderr
        assert (t.home / ".mlflow/credentials").stat().st_mode & 0o777 == 0o600
        yield t
    finally:
        subprocess.run([WXOPS, "server", "stop", "--state-dir", str(t.state)], env=t.env(), timeout=120,
                       capture_output=True)


@pytest.fixture
def as_alice(as_user):  # type: ignore[no-untyped-def]
    as_user("alice", PASSWORD)


def test_online_release_cycle_on_the_team_server(team: Team, tmp_path: Path, as_alice) -> None:  # type: ignore[no-untyped-def]
    folder = project(tmp_path, "visibility-team", GOOD)
    first = wxops(team, "run", "-c", "wxops.yaml", "--quiet", cwd=folder)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "version 1 [champion]" in first.stdout
    verified = wxops(team, "verify", "-c", "wxops.yaml", cwd=folder)  # no challenger: the champion
    assert verified.returncode == 0 and "version 1: PASS" in verified.stdout, verified.stdout + verified.stderr
    mv = team.client().get_model_version("visibility-team", "1")
    assert mv.source.startswith("models:/m-")  # an MLflow 3 logged model, registered by its id:
    logged = team.client().get_logged_model(mv.source.removeprefix("models:/"))
    assert logged.source_run_id == mv.run_id  # the server tied version, model and run together
    assert '"version": 1' in logged.tags["mlflow.modelVersions"]

    # served from the server registry with the login's credentials
    port = free_port()
    env = {**team.env(), "WXOPS_SERVE_TOKENS": f"predict:{TOKEN}"}
    serve = subprocess.Popen([WXOPS, "serve", "--tracking-uri", team.url, "--model", "visibility-team@champion",
                              "--port", str(port), "--poll", "0"], cwd=folder, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert serve.poll() is None, serve.stderr.read() if serve.stderr else ""
            try:
                if requests.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        answer = requests.post(f"http://127.0.0.1:{port}/predict", json={"data": example_frame(4).to_json()},
                               headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "1" and answer.json()["model_run_id"] == mv.run_id
    finally:
        os.killpg(serve.pid, 15)
        serve.wait(timeout=30)

    # a worse configuration: registered, rejected, and every command says so with exit 6
    between = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    (folder / "wxops.yaml").write_text(yaml.safe_dump({
        "seed": 7, "models": DEGRADED, "gate": {"bootstrap_samples": 200},
        "tracking": {"experiment": "visibility-team", "registered_model": "visibility-team"}}))
    second = wxops(team, "run", "-c", "wxops.yaml", "--quiet", cwd=folder)
    assert second.returncode == 6, second.stdout + second.stderr
    assert "version 2 stays challenger" in second.stdout
    verified = wxops(team, "verify", "-c", "wxops.yaml", cwd=folder)  # the challenger now
    assert verified.returncode == 6 and "version 2: FAIL" in verified.stdout, verified.stdout
    refused = wxops(team, "promote", "2", "-c", "wxops.yaml", "--reason", "try again", cwd=folder)
    assert refused.returncode == 6 and "stays challenger" in refused.stdout, refused.stdout + refused.stderr
    at = wxops(team, "history", "-c", "wxops.yaml", "--at", between, cwd=folder)
    assert at.returncode == 0 and "version 1" in at.stdout, at.stdout + at.stderr
    assert team.client().get_registered_model("visibility-team").aliases == {"champion": "1", "challenger": "2"}


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
