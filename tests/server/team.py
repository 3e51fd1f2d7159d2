"""The team server of journey 2 as a user sets it up, shared by its online and outage tests.

Each test module gets its own server (``wxops server start`` on a fresh PostgreSQL
database), a user made with ``wxops server add-user`` and logged in with ``wxops login``;
the credentials file in a temporary HOME is all the later commands get. Online and
outage live in two modules so that two pytest-xdist workers (``--dist loadfile``) run
them side by side instead of one worker running both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.server.conftest import free_port

WXOPS = str(Path(sys.executable).parent / "wxops")
PASSWORD = "alice-journey-password-2"
GOOD = [{"name": "gbm-short", "type": "gradient_boosting", "max_iter": 10}]
DEGRADED = [{"name": "mlp-one-epoch", "type": "mlp", "epochs": 1, "learning_rate": 1e-5, "hidden_dim": 4}]
#: The gate as the journey runs it, with fewer bootstrap samples and a forecast cycle every
#: 6 hours (00/06/12/18 UTC) in the replay instead of every hour: the same rules, a
#: fraction of the gate's time in each run, verify and sync. The verdicts were checked to
#: stay the same for these configurations only: a coarser replay can flip a borderline
#: one (the generated-stack tests keep the hourly replay for that reason).
GATE = {"bootstrap_samples": 200, "replay_cycle_hours": 6}


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


def project_config(name: str, models: list[dict[str, Any]]) -> str:
    """The ``wxops.yaml`` of a journey project: its own experiment and registered model."""
    return yaml.safe_dump({"seed": 7, "models": models, "gate": dict(GATE),
                           "tracking": {"experiment": name, "registered_model": name}})


def project(root: Path, name: str, models: list[dict[str, Any]]) -> Path:
    folder = root / name
    folder.mkdir(exist_ok=True)
    (folder / "wxops.yaml").write_text(project_config(name, models))
    return folder


@contextmanager
def running_team(root: Path, new_database: Callable[[], str]) -> Iterator[Team]:
    """A started team server with user alice logged in; stopped afterwards."""
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
