"""Journey 9 (the people who need to know): a promotion, a rejection and a rollback made
with the installed ``wxops`` reach a webhook receiver and an SMTP server on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.loopback import smtp_receiver, webhook_receiver

pytestmark = pytest.mark.slow

WXOPS = str(Path(sys.executable).with_name("wxops"))


def _config(folder: Path, smtp_port: int, *, alpha: float, strict: bool) -> None:
    rules = [{"score": "rmse", "against": "climatology", "min_skill": 0.99 if strict else 0.0}]
    raw = {
        "seed": 7,
        "models": [{"name": "ridge", "type": "linear", "alpha": alpha}],
        "gate": {"rules": rules, "bootstrap_samples": 100},
        "notify": {"channels": [
            {"type": "webhook", "name": "ops-chat", "format": "mattermost", "url_file": "hook_url"},
            {"type": "email", "name": "duty", "host": "127.0.0.1", "port": smtp_port, "security": "none",
             "sender": "wxops@example.org", "to": ["duty@example.org"], "username": "wxops",
             "password_env": "WXOPS_SMTP_PASSWORD"},
        ]},
    }
    (folder / "wxops.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_journey_9_release_notices_reach_chat_and_mail(tmp_path: Path) -> None:
    """Journey 9: promotion, rejection and rollback each reach the webhook and the SMTP
    receiver; the secrets they used appear in no output, log or tracking artifact."""
    project = tmp_path / "project"
    project.mkdir()
    with webhook_receiver(tmp_path / "hook") as hook, smtp_receiver(tmp_path / "smtp") as smtp:
        (project / "hook_url").write_text(hook.url + "\n")
        (project / "hook_url").chmod(0o600)
        env = {**os.environ, "HOME": str(tmp_path / "home"), "WXOPS_SMTP_PASSWORD": smtp.password,
               "NO_PROXY": "127.0.0.1"}

        def wxops(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([WXOPS, *args], cwd=project, env=env, capture_output=True, text=True,
                                  timeout=600)
            for secret in ("secret-token-123", smtp.password):
                assert secret not in done.stdout + done.stderr
            return done

        _config(project, smtp.port, alpha=1.0, strict=False)
        first = wxops("run", "-c", "wxops.yaml", "--quiet")
        assert first.returncode == 0, first.stderr[-3000:]
        _config(project, smtp.port, alpha=30.0, strict=True)
        wxops("run", "-c", "wxops.yaml", "--quiet")  # the gate rejects version 2 (exit code: issue 12)
        forced = wxops("promote", "2", "--force", "--reason", "journey 9", "-c", "wxops.yaml")
        assert forced.returncode == 0, forced.stderr[-3000:]
        back = wxops("rollback", "--reason", "forced version misbehaves", "-c", "wxops.yaml")
        assert back.returncode == 0, back.stderr[-3000:]

        posts = [m["body"]["text"] for m in hook.messages()]  # type: ignore[index]
        mails = smtp.messages()
    titles = [p.splitlines()[0] for p in posts]
    assert titles == [
        "#### visibility 1.0.0 (version 1) is champion",
        "#### visibility version 2 rejected: stays challenger",
        "#### visibility 1.1.0 (version 2) is champion — FORCED past the gate",
        "#### visibility: champion rolled back from version 2 to version 1",
    ], titles
    assert "rmse vs climatology" in posts[1] and "# visibility 1.0.0" in posts[0]  # why; the release note
    events = sorted(str(m["X-Wxops-Event"]) for m in mails)  # type: ignore[index]
    assert events == ["promotion", "promotion", "rejection", "rollback"]  # a Maildir has no order
    rollback = next(m for m in mails if m["X-Wxops-Event"] == "rollback")  # type: ignore[index]
    assert "reason: forced version misbehaves" in rollback.get_payload()  # type: ignore[attr-defined]
    stored = "".join(p.read_text(errors="replace") for p in (project / "mlartifacts").rglob("*")
                     if p.is_file() and p.suffix in (".json", ".md", ".txt", ".yaml"))
    assert "secret-token-123" not in stored and smtp.password not in stored
