"""Notifications against real receivers on loopback: an HTTP webhook receiver and aiosmtpd."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.loopback import smtp_receiver, webhook_receiver
from wxops.config import NotifyConfig, parse_config
from wxops.errors import ConfigError, NotifyError
from wxops.notify import Notice, check_channels, read_secret, send

NOTICE = Notice("promotion", "visibility 1.1.0 (version 2) is champion", "# release note\n\nscores...",
                {"model": "visibility", "version": "2"})


def _cfg(channels: list[dict[str, object]]) -> NotifyConfig:
    return parse_config({"notify": {"channels": channels}}).notify


@pytest.mark.parametrize("fmt", ["slack", "mattermost", "rocketchat", "teams"])
def test_webhook_formats_reach_the_receiver(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with webhook_receiver(tmp_path / "hook") as hook:
        monkeypatch.setenv("HOOK_URL", hook.url)
        missed = send(_cfg([{"type": "webhook", "format": fmt, "url_env": "HOOK_URL"}]), NOTICE)
        (posted,) = hook.messages()
    assert missed == [] and posted["path"] == "/hooks/secret-token-123"
    assert posted["type"] == "application/json"
    body = posted["body"]
    if fmt == "teams":
        card = body["attachments"][0]["content"]
        assert card["type"] == "AdaptiveCard"
        texts = [b.get("text") for b in card["body"]]
        assert NOTICE.title in texts and NOTICE.body in texts
        assert {"title": "version", "value": "2"} in card["body"][1]["facts"]
    else:
        assert NOTICE.title in body["text"] and "version: 2" in body["text"] and NOTICE.body in body["text"]


def test_email_with_login_from_a_0600_file(tmp_path: Path) -> None:
    with smtp_receiver(tmp_path / "smtp") as smtp:
        secret = tmp_path / "smtp_password"
        secret.write_text(smtp.password + "\n")
        secret.chmod(0o600)
        channel = {"type": "email", "host": smtp.host, "port": smtp.port, "security": "none",
                   "sender": "wxops@example.org", "to": ["ops@example.org", "duty@example.org"],
                   "username": smtp.user, "password_file": str(secret)}
        assert send(_cfg([channel]), NOTICE) == []
        (mail,) = smtp.messages()
    assert mail["Subject"] == f"[wxops] {NOTICE.title}"  # type: ignore[index]
    assert mail["To"] == "ops@example.org, duty@example.org"  # type: ignore[index]
    assert mail["X-Wxops-Event"] == "promotion"  # type: ignore[index]
    assert "model: visibility" in mail.get_payload() and "# release note" in mail.get_payload()  # type: ignore[attr-defined]


def test_events_filter_and_failures_are_warnings_without_secrets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with smtp_receiver(tmp_path / "smtp") as smtp, webhook_receiver(tmp_path / "hook") as hook:
        monkeypatch.setenv("HOOK_URL", hook.url)
        monkeypatch.setenv("SMTP_PW", "wrong-password-789")
        dead = hook.url.rsplit(":", 1)[0] + ":1/hooks/dead-token-000"
        monkeypatch.setenv("DEAD_URL", dead)
        cfg = _cfg([
            {"type": "webhook", "name": "incidents-only", "url_env": "HOOK_URL", "events": ["incident"]},
            {"type": "webhook", "name": "down", "url_env": "DEAD_URL"},
            {"type": "email", "name": "bad-login", "host": smtp.host, "port": smtp.port, "security": "none",
             "sender": "wxops@example.org", "to": ["ops@example.org"], "username": smtp.user,
             "password_env": "SMTP_PW"},
        ])
        with caplog.at_level(logging.WARNING, logger="wxops.notify"):
            missed = send(cfg, NOTICE)
        assert hook.messages() == [] and smtp.messages() == []
    assert missed == ["down", "bad-login"]
    text = caplog.text
    assert "'down'" in text and "cannot reach the webhook" in text
    assert "'bad-login'" in text and "refused the login" in text
    assert "dead-token-000" not in text and "wrong-password-789" not in text


def test_secrets_must_be_set_and_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    with pytest.raises(NotifyError, match="NO_SUCH_HOOK is not set"):
        check_channels(_cfg([{"type": "webhook", "url_env": "NO_SUCH_HOOK"}]))
    loose = tmp_path / "hook_url"
    loose.write_text("https://chat.example.org/hooks/abc")
    loose.chmod(0o644)
    with pytest.raises(NotifyError, match=r"readable by others \(mode 644\); run `chmod 600"):
        read_secret(None, loose, "hook")
    with pytest.raises(NotifyError, match="not found"):
        read_secret(None, tmp_path / "missing", "hook")
    loose.chmod(0o600)
    assert read_secret(None, loose, "hook") == "https://chat.example.org/hooks/abc"
    from wxops import redact

    check_channels(_cfg([{"type": "webhook", "url_file": str(loose)}]))
    assert redact.redact_text("posting to https://chat.example.org/hooks/abc") == "posting to ***"
    redact.configure([])


def test_channel_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"url_env .* or url_file"):
        _cfg([{"type": "webhook"}])
    with pytest.raises(ConfigError, match="not both"):
        _cfg([{"type": "webhook", "url_env": "A", "url_file": "/x"}])
    with pytest.raises(ConfigError, match="unknown key"):
        _cfg([{"type": "webhook", "url": "https://chat.example.org/hooks/abc"}])
    with pytest.raises(ConfigError, match="go together"):
        _cfg([{"type": "email", "host": "h", "sender": "a@b.c", "to": ["d@e.f"], "username": "u"}])
    with pytest.raises(ConfigError, match="to"):
        _cfg([{"type": "email", "host": "h", "sender": "a@b.c", "to": ["not-an-address"]}])
    with pytest.raises(ConfigError, match="events"):
        _cfg([{"type": "webhook", "url_env": "A", "events": ["promotoin"]}])


def test_run_with_a_missing_secret_stops_before_training(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import yaml

    (tmp_path / "wxops.yaml").write_text(yaml.safe_dump({
        "models": [{"name": "ridge", "type": "linear"}],
        "notify": {"channels": [{"type": "webhook", "url_env": "WXOPS_TEST_UNSET_HOOK"}]}}))
    env = {k: v for k, v in os.environ.items() if k != "WXOPS_TEST_UNSET_HOOK"} | {"HOME": str(tmp_path)}
    done = subprocess.run([str(Path(sys.executable).with_name("wxops")), "run", "-c", "wxops.yaml", "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "WXOPS_TEST_UNSET_HOOK is not set" in done.stderr
    assert not (tmp_path / "mlflow.db").exists()
