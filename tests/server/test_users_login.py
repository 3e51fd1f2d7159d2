"""Users, permissions and ``wxops login`` against a real server with MLflow's auth app."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.server.conftest import Server
from wxops.cli import app

pytestmark = [pytest.mark.service, pytest.mark.slow]
runner = CliRunner()


def wx(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=stdin, catch_exceptions=False)


def admin(server: Server, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return wx("server", *args, "--state-dir", str(server.state), stdin=stdin)


def _client(server: Server):  # type: ignore[no-untyped-def]
    import mlflow

    return mlflow.MlflowClient(tracking_uri=server.url)


def test_permissions_are_enforced(team_server: Server, as_user) -> None:  # type: ignore[no-untyped-def]
    from mlflow.exceptions import MlflowException

    for name in ("alice", "bob"):
        made = admin(team_server, "add-user", name, "--password-stdin", stdin=f"{name}-password-123\n")
        assert made.exit_code == 0, made.output
    as_user("alice", "alice-password-123")
    exp = _client(team_server).create_experiment("alice-exp")
    run = _client(team_server).create_run(exp)
    _client(team_server).log_param(run.info.run_id, "a", "1")

    as_user("bob", "bob-password-123")
    assert _client(team_server).get_experiment(exp).name == "alice-exp"  # default READ
    with pytest.raises(MlflowException, match="403") as denied:
        _client(team_server).log_param(run.info.run_id, "b", "2")
    assert denied.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException, match="403"):
        _client(team_server).create_run(exp)

    granted = admin(team_server, "grant", "bob", "alice-exp", "EDIT")
    assert granted.exit_code == 0 and "granted EDIT" in granted.output
    _client(team_server).log_param(run.info.run_id, "b", "2")  # now allowed
    changed = admin(team_server, "grant", "bob", "alice-exp", "read")
    assert changed.exit_code == 0 and "to READ" in changed.output
    with pytest.raises(MlflowException, match="403"):
        _client(team_server).log_param(run.info.run_id, "c", "3")

    import requests

    anonymous = requests.get(f"{team_server.url}/api/2.0/mlflow/experiments/get",
                             params={"experiment_id": exp}, timeout=10)
    assert anonymous.status_code == 401
    wrong = requests.get(f"{team_server.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": exp},
                         auth=("bob", "not-his-password"), timeout=10)
    assert wrong.status_code == 401


def test_model_grant_and_passwd(team_server: Server, as_user) -> None:  # type: ignore[no-untyped-def]
    import mlflow
    from mlflow.exceptions import MlflowException

    assert admin(team_server, "add-user", "carol", "--password-stdin", stdin="carol-password-123\n").exit_code == 0
    as_user("admin", team_server.admin_password)
    mlflow.MlflowClient(tracking_uri=team_server.url, registry_uri=team_server.url).create_registered_model("vis")
    result = admin(team_server, "grant", "carol", "vis", "MANAGE", "--model")
    assert result.exit_code == 0 and "granted MANAGE on model 'vis'" in result.output
    assert admin(team_server, "grant", "carol", "nope", "READ", "--model").output.count("no registered model 'nope'")

    result = admin(team_server, "passwd", "carol", "--password-stdin", stdin="carol-new-password-1\n")
    assert result.exit_code == 0, result.output
    as_user("carol", "carol-password-123")
    with pytest.raises(MlflowException, match="401"):
        _client(team_server).search_experiments()
    as_user("carol", "carol-new-password-1")
    _client(team_server).search_experiments()


@pytest.mark.parametrize("args, stdin, message", [
    (("add-user", "dave", "--password-stdin"), "short\n", "password too short"),
    (("passwd", "nobody", "--password-stdin"), "long-enough-password\n", "unknown user 'nobody'"),
    (("grant", "nobody", "x", "READ"), None, "unknown user 'nobody'"),
    (("grant", "alice", "x", "WRITE"), None, "permission 'WRITE' is not one of"),
    (("grant", "alice", "no-such-experiment", "READ"), None, "no experiment 'no-such-experiment'"),
])
def test_bad_admin_input(team_server: Server, args: tuple[str, ...], stdin: str | None, message: str) -> None:
    admin(team_server, "add-user", "alice", "--password-stdin", stdin="alice-password-123\n")
    result = admin(team_server, *args, stdin=stdin)
    assert result.exit_code == 1 and message in result.output, result.output


def test_add_user_twice_and_generated_password(team_server: Server, home: Path) -> None:
    result = admin(team_server, "add-user", "erin", "--generate")
    assert result.exit_code == 0, result.output
    secret_file = team_server.state / "users" / "erin.password"
    password = secret_file.read_text().strip()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600 and password not in result.output
    again = admin(team_server, "add-user", "erin", "--password-stdin", stdin="another-password-1\n")
    assert again.exit_code == 1 and "cannot create user 'erin'" in again.output
    login = wx("login", team_server.url, "-u", "erin", "--password-stdin", stdin=password + "\n")
    assert login.exit_code == 0, login.output


def test_admin_without_server_is_clear(tmp_path: Path) -> None:
    result = wx("server", "grant", "a", "b", "READ", "--state-dir", str(tmp_path))
    assert result.exit_code == 1 and "no server runs from" in result.output


def test_login_writes_mlflow_credentials(team_server: Server, home: Path, as_user) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    admin(team_server, "add-user", "frank", "--password-stdin", stdin="frank-password-123\n")
    as_user(None, None)
    creds = home / ".mlflow" / "credentials"

    bad = wx("login", team_server.url, "-u", "frank", "--password-stdin", stdin="wrong-password\n")
    assert bad.exit_code == 1 and "wrong user name or password" in bad.output
    assert not creds.exists()
    unknown = wx("login", team_server.url, "-u", "nobody", "--password-stdin", stdin="whatever-pass\n")
    assert unknown.exit_code == 1 and not creds.exists()
    gone = wx("login", "http://127.0.0.1:1", "-u", "frank", "--password-stdin", stdin="x\n")
    assert gone.exit_code == 1 and "cannot reach" in gone.output

    ok = wx("login", team_server.url, "-u", "frank", "--password-stdin", stdin="frank-password-123\n")
    assert ok.exit_code == 0 and "frank-password-123" not in ok.output
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    parsed = configparser.ConfigParser()
    parsed.read(creds)
    assert parsed["mlflow"]["mlflow_tracking_username"] == "frank"
    # MLflow's own client now authenticates from the file alone
    assert mlflow.MlflowClient(tracking_uri=team_server.url).search_experiments() is not None

    changed = wx("login", team_server.url, "-u", "frank", "--password-stdin", "--change-password",
                 stdin="frank-password-123\nfrank-%new-pass-456\n")
    assert changed.exit_code == 0, changed.output
    assert "password changed" in changed.output
    assert mlflow.MlflowClient(tracking_uri=team_server.url).search_experiments() is not None
    old = wx("login", team_server.url, "-u", "frank", "--password-stdin", stdin="frank-password-123\n")
    assert old.exit_code == 1
