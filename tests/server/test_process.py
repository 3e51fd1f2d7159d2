"""``wxops server start/status/stop`` and ``wxops deploy server`` as a user calls them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.server.conftest import PG, free_port
from wxops.cli import app

runner = CliRunner()
YAMLLINT_CONFIG = ("{extends: default, rules: {line-length: {max: 160}, "
                   "document-start: disable, truthy: {check-keys: false}}}")


def wx(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.service
@pytest.mark.slow
def test_start_status_stop_cycle(tmp_path: Path, new_database) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    port = free_port()
    backend = new_database()
    started = wx("server", "start", "--backend", backend, "--port", str(port), "--state-dir", str(state),
                 "--workers", "1", "--artifacts", str(tmp_path / "art"))
    try:
        assert started.exit_code == 0, started.output
        password = (state / "admin_password").read_text().strip()
        assert len(password) >= 24
        # secrets: 0600 files, never printed, never in the log or the pid file
        for name in ("admin_password", "basic_auth.ini", "flask_secret", "server.json"):
            assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
        assert password not in started.output
        assert password not in (state / "server.log").read_text()
        assert password not in (state / "server.json").read_text()
        status = wx("server", "status", "--state-dir", str(state))
        assert status.exit_code == 0 and "healthy" in status.output
        again = wx("server", "start", "--backend", backend, "--port", str(free_port()), "--state-dir", str(state))
        assert again.exit_code == 1 and "already runs" in again.output
        pid = json.loads((state / "server.json").read_text())["pid"]
    finally:
        stopped = wx("server", "stop", "--state-dir", str(state))
    assert stopped.exit_code == 0 and f"stopped server pid {pid}" in stopped.output
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole group is gone (workers included)
    assert wx("server", "status", "--state-dir", str(state)).exit_code == 1
    assert "nothing to stop" in wx("server", "stop", "--state-dir", str(state)).output


def test_stale_pid_file_is_cleaned(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (state / "server.json").write_text(json.dumps({
        "pid": dead.pid, "url": "http://127.0.0.1:1", "backend": "x", "artifacts": "x", "log": "x",
        "started": 0.0}))
    result = wx("server", "status", "--state-dir", str(state))
    assert result.exit_code == 1 and "not running" in result.output
    assert not (state / "server.json").exists()


def test_damaged_pid_file_is_named(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "server.json").write_text("{not json")
    result = wx("server", "status", "--state-dir", str(state))
    assert result.exit_code == 1 and "server.json is damaged" in result.output


@pytest.mark.parametrize("backend, message", [
    ("mysql://u@h/db", "is not supported"),
    ("postgresql://postgres@127.0.0.1:5432", "names no database"),
    ("postgresql://postgres@127.0.0.1:1/wxops_none", "cannot reach PostgreSQL"),
])
def test_bad_backend_is_refused_and_nothing_runs(tmp_path: Path, backend: str, message: str) -> None:
    state = tmp_path / "state"
    result = wx("server", "start", "--backend", backend, "--port", str(free_port()), "--state-dir", str(state))
    assert result.exit_code == 1 and message in result.output
    assert not (state / "server.json").exists()


def test_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = wx("server", "start", "--backend", f"{PG}/x", "--port", str(port),
                    "--state-dir", str(tmp_path / "s"))
    assert result.exit_code == 1 and f"port {port} on 127.0.0.1 is in use" in result.output
    assert not (tmp_path / "s").exists()


@pytest.mark.service
def test_bad_default_permission_is_refused(tmp_path: Path, new_database) -> None:  # type: ignore[no-untyped-def]
    result = wx("server", "start", "--backend", new_database(), "--port", str(free_port()),
                "--state-dir", str(tmp_path / "s"), "--default-permission", "WRITE")
    assert result.exit_code == 1 and "default permission 'WRITE' is not one of" in result.output
    assert not (tmp_path / "s" / "server.json").exists()


def test_deploy_server_writes_unit_and_compose(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    result = wx("deploy", "server", "--out", str(out), "--port", "5055", "--artifacts", "/srv/art")
    assert result.exit_code == 0, result.output
    compose = yaml.safe_load((out / "compose.server.yaml").read_text())
    command = compose["services"]["mlflow"]["command"]
    for flag in ("--serve-artifacts", "--artifacts-destination /srv/art", "--app-name basic-auth", "--port 5055"):
        assert flag in command
    unit = (out / "wxops-mlflow.service").read_text()
    assert "ExecStart=" in unit and "--app-name basic-auth" in unit and "EnvironmentFile=" in unit
    assert "admin_password" not in (out / "basic_auth.ini").read_text().replace("# admin_password", "")
    yamllint = shutil.which("yamllint") or shutil.which("yamllint", path=str(Path(sys.executable).parent))
    if yamllint is None:
        pytest.skip("yamllint is not installed")
    done = subprocess.run([yamllint, "-f", "parsable", "-d", YAMLLINT_CONFIG, str(out / "compose.server.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout
    again = wx("deploy", "server", "--out", str(out))
    assert again.exit_code == 1 and "--force" in again.output


def test_deploy_server_refuses_password_in_uri(tmp_path: Path) -> None:
    result = wx("deploy", "server", "--out", str(tmp_path / "d"), "--backend", "postgresql://u:pw@db:5432/m")
    assert result.exit_code == 1 and "holds a password" in result.output
    assert not (tmp_path / "d").exists()
