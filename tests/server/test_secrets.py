"""Secrets never leave the machine: redaction rules, and a canary pushed through every
logging path to the real server on PostgreSQL, then searched for in its database dump
and its artifact store."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.server.conftest import Server, free_port
from wxops import redact

CANARY = "canary-7f3e9b1d2c"
#: A credential that is not configured anywhere: found by its ``Bearer``/``Basic`` form.
BEARER = "tok9c4d1e7a8b6f5a3d"
BASIC = "dXNlcjpwYXNzd29yZDEyMw=="


@pytest.fixture
def secrets_set() -> object:
    redact.configure([CANARY])
    yield
    redact.configure([])


@pytest.mark.parametrize("key", ["password", "db_password", "API_KEY", "api-key", "hf_token",
                                 "client_secret", "aws_credentials", "passwd"])
def test_secret_keys_are_masked(key: str) -> None:
    assert redact.redact_mapping({key: "hunter2", "epochs": 5}) == {key: "***", "epochs": 5}


def test_configured_values_are_scrubbed_everywhere(secrets_set: object) -> None:
    tree = {"a": f"x{CANARY}y", "b": [CANARY, {"c": CANARY}], "n": 3}
    assert CANARY not in str(redact.redact_tree(tree))
    assert redact.redact_tree(tree)["n"] == 3


def test_http_credentials_in_text() -> None:
    text = (f"GET / Authorization: Bearer {BEARER}\nAuthorization: Basic {BASIC}\n"
            "Basic knowledge of the bearer of news; Basic configuration")
    clean = redact.redact_text(text)
    assert BEARER not in clean and BASIC not in clean
    assert "Bearer ***" in clean and "Basic ***" in clean
    assert "Basic knowledge of the bearer of news; Basic configuration" in clean  # words stay


def test_text_pairs_and_url_passwords() -> None:
    text = ("connect postgresql://u:s3cr3t@db/x then token=abc123 and \"password\": \"pw1\" "
            "api_key: k9; learning_rate=0.1")
    clean = redact.redact_text(text)
    for secret in ("s3cr3t", "abc123", "pw1", "k9"):
        assert secret not in clean
    assert "learning_rate=0.1" in clean and "postgresql://u:***@db/x" in clean


def test_a_nested_connect_keeps_the_secrets(tmp_path: Path) -> None:
    """A training task connects again inside the pipeline's process: redaction must survive."""
    from mlflow import MlflowClient

    from wxops import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.connect(uri, secrets=[CANARY])
    try:
        exp = tracking.ensure_experiment("nested", (tmp_path / "artifacts").as_uri())
        with tracking.start_run(exp, "pipeline") as parent:
            tracking.connect(uri)  # what run_train_task does
            with tracking.start_run(exp, "config", parent_run_id=parent) as child:
                tracking.log_params({"note": f"db at {CANARY}"})
        tracking.connect(uri)  # a later command in the same process, e.g. the release step
        with tracking.start_run(exp, "later") as later:
            tracking.set_tags({"source": CANARY})
        client = MlflowClient(uri)
        assert client.get_run(child).data.params["note"] == "db at ***"
        assert client.get_run(later).data.tags["source"] == "***"
    finally:
        redact.configure([])


def test_config_rejects_a_non_list_of_secrets() -> None:
    from wxops.config import parse_config
    from wxops.errors import ConfigError

    assert parse_config({"tracking": {"secrets": ["a", "b"]}}).tracking.secrets == ["a", "b"]
    with pytest.raises(ConfigError, match="secrets"):
        parse_config({"tracking": {"secrets": "not-a-list", "extra": 1}})


@pytest.mark.service
@pytest.mark.slow
def test_canary_reaches_neither_database_nor_artifacts(team_server: Server, as_user, tmp_path: Path,
                                                       secrets_set: object) -> None:  # type: ignore[no-untyped-def]
    from wxops import tracking

    as_user("admin", team_server.admin_password)
    tracking.connect(team_server.url, outbox=tmp_path / "outbox", secrets=[CANARY])
    exp = tracking.ensure_experiment(f"canary-{CANARY}", None)
    assert tracking.ensure_experiment(f"canary-{CANARY}", None) == exp  # found again by its name
    frame = pd.DataFrame({"t2m": [1.0, 2.0], "visibility": [1000.0, 2000.0]})
    log_file = tmp_path / "train.log"
    log_file.write_text(f"epoch 1 loss 0.3\nusing token={CANARY}\nconnect https://me:{CANARY}@data/x\n"
                        f"curl -H 'Authorization: Bearer {BEARER}' -H 'Authorization: Basic {BASIC}'\n")
    with tracking.start_run(exp, f"pipeline-{CANARY}",
                            tags={"secret_tag": CANARY, "note": f"see {CANARY}"}) as parent:
        tracking.log_params({"db_password": CANARY, "data.path": f"s3://bucket/{CANARY}/obs.csv",
                             "nested": {"api_key": CANARY, "other": [CANARY]}})
        tracking.set_tags({"hf_token": CANARY, "comment": f"with {CANARY} inside"})
        tracking.log_dict({"tracking": {"secrets": [CANARY], "uri": "http://x"}, "seed": 1}, "config.json")
        tracking.log_dict({"source": {"path": f"/data/{CANARY}.csv"}, "git": {"remote": f"https://u:{CANARY}@git"}},
                          "lineage.json")
        tracking.log_text(f"INFO started\npassword: {CANARY}\nheader Bearer {BEARER}\n", "logs/run.txt")
        tracking.log_params({"request": f"Authorization: Basic {BASIC}"})
        tracking.log_artifact(log_file)
        tracking.log_dataset(frame, source=f"https://host/{CANARY}/obs.csv", name=f"obs-{CANARY}",
                             digest="d" * 64, context="train", targets="visibility")
        with tracking.start_run(exp, "child", parent_run_id=parent, tags={"password": CANARY}):
            tracking.log_params({"credential": CANARY})
    tracking.log_text_to_run(parent, f"token: {CANARY}", "later.txt")
    assert not tracking.is_offline()

    dump = subprocess.run(["pg_dump", "--data-only", "-h", "127.0.0.1", "-U", "postgres",
                           team_server.backend.rsplit("/", 1)[1]], capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr
    assert "db_password" in dump.stdout and "lineage.json" not in dump.stdout  # the dump is the real one
    assert "canary-***" in dump.stdout and "pipeline-***" in dump.stdout  # experiment, run name
    for secret in (CANARY, BEARER, BASIC):
        assert secret not in dump.stdout, secret
    files = [p for p in team_server.artifacts.rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in files) and any(p.name == "train.log" for p in files)
    leaked = [str(p) for p in files for secret in (CANARY, BEARER, BASIC)
              if secret.encode() in p.read_bytes()]
    assert leaked == []
    # the server's own state folder: every file private
    state_files = [p for p in team_server.state.rglob("*") if p.is_file()]
    assert {"server.log", "auth.db", "admin_password"} <= {p.name for p in state_files}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in state_files} == {
        p.name: "0o600" for p in state_files}


def test_unreachable_at_start_goes_to_the_outbox_and_says_so_once(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from wxops import tracking
    from wxops.outbox import REMOTE_RUN_TAG, TARGET_TAG, outbox_uri

    url = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="wxops.tracking"):
        tracking.connect(url, outbox=tmp_path / "outbox")
        exp = tracking.ensure_experiment("offline-start", None)
        with tracking.start_run(exp, "run") as run_id:
            tracking.log_params({"a": 1})
            on_epoch, flush = tracking.epoch_logger(run_id)
            for epoch in range(5):
                on_epoch(epoch, 1.0 / (epoch + 1), None)
            flush()
    assert tracking.is_offline()
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1
    client = mlflow.MlflowClient(tracking_uri=outbox_uri(tmp_path / "outbox"))
    run = client.get_run(run_id)
    assert run.data.tags[TARGET_TAG] == url and REMOTE_RUN_TAG not in run.data.tags
    assert [m.step for m in client.get_metric_history(run_id, "train_loss")] == list(range(5))
    assert run.info.status == "FINISHED"


def test_refused_requests_do_not_go_offline(team_server: Server, as_user, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from wxops import tracking
    from wxops.errors import TrackingError

    as_user("nobody", "wrong-password-123")
    tracking.connect(team_server.url, outbox=tmp_path / "outbox")
    with pytest.raises(TrackingError, match=r"401|Unauthorized|credentials"):
        tracking.ensure_experiment("refused", None)
    assert not tracking.is_offline() and not (tmp_path / "outbox").exists()
    assert shutil.which("pg_dump")
