"""Real PostgreSQL databases and real MLflow servers (started by wxops) for the server tests.

Each test session gets its own databases, dropped afterwards; every server is stopped
by process group in teardown, so nothing outlives the tests.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG = "postgresql://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def pg_available() -> None:
    import psycopg

    try:
        with psycopg.connect(f"{PG}/test", connect_timeout=3):
            pass
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not available on 127.0.0.1:5432: {exc}")


@pytest.fixture(scope="session")
def new_database(pg_available: None) -> Iterator[object]:
    """A factory of fresh database names; all of them are dropped at the end of the session."""
    made: list[str] = []

    def make() -> str:
        name = f"wxops_test_{uuid.uuid4().hex[:10]}"
        made.append(name)
        return f"{PG}/{name}"

    yield make
    for name in made:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Server:
    """A running wxops team server and what a test needs to talk to it."""

    url: str
    state: Path
    backend: str
    artifacts: Path
    port: int

    @property
    def admin_password(self) -> str:
        return (self.state / "admin_password").read_text().strip()

    def settings(self):  # type: ignore[no-untyped-def]
        from wxops.server.process import ServerSettings

        return ServerSettings(backend=self.backend, artifacts=str(self.artifacts), port=self.port,
                              state_dir=str(self.state), workers=1)

    def start(self) -> None:
        from wxops.server.process import start_server

        start_server(self.settings())

    def stop(self) -> None:
        from wxops.server.process import stop_server

        stop_server(self.state)


def make_server(root: Path, backend: str) -> Server:
    port = free_port()
    return Server(url=f"http://127.0.0.1:{port}", state=root / "state", backend=backend,
                  artifacts=root / "artifacts", port=port)


@pytest.fixture(scope="session")
def team_server(tmp_path_factory: pytest.TempPathFactory, new_database) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """One server for the session's read-mostly tests (users, permissions, login, canary)."""
    server = make_server(tmp_path_factory.mktemp("team"), new_database())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def as_user():  # type: ignore[no-untyped-def]
    """Set MLflow credentials for the test (environment), restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}

    def use(username: str | None, password: str | None) -> None:
        for key, value in (("MLFLOW_TRACKING_USERNAME", username), ("MLFLOW_TRACKING_PASSWORD", password)):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    yield use
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME, so ~/.mlflow/credentials and ~/.wxops of the machine are never touched."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder
