"""Journey 2 of JOURNEYS.md, online: the team server as a user runs it.

Everything goes through the installed ``wxops`` command in fresh project folders against
a server of this module (see :mod:`tests.server.team`). ``wxops run`` registers, gates
and promotes on the server; ``wxops verify`` with no ``--model`` verifies the newest
version; ``wxops serve --tracking-uri`` serves the champion; a worse configuration is
rejected with exit code 6 by ``wxops run``, ``wxops verify`` and ``wxops promote``;
``wxops history --at`` names the champion. The outage half is ``test_team_outage.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.serve.conftest import example_frame
from tests.server.conftest import free_port
from tests.server.team import DEGRADED, GOOD, PASSWORD, WXOPS, Team, project, project_config, running_team, wxops

pytestmark = [pytest.mark.slow, pytest.mark.service]

TOKEN = "predict-journey-token-0123456789"


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, new_database) -> Iterator[Team]:  # type: ignore[no-untyped-def]
    with running_team(tmp_path_factory.mktemp("journey2-online"), new_database) as t:
        yield t


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
    (folder / "wxops.yaml").write_text(project_config("visibility-team", DEGRADED))
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
