"""Journey 9 (incident): a live-score incident opened by the monitor reaches a webhook
receiver and an SMTP server on loopback, once per incident."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.loopback import smtp_receiver, webhook_receiver
from tests.monitor.conftest import Project, Replay, write_days
from wxops.config import parse_config
from wxops.monitor import EXIT_INCIDENT, monitor_once

pytestmark = pytest.mark.slow


def test_journey_9_incident_reaches_chat_and_mail(project: Project, clean_replay: Replay, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Journey 9: the monitoring incident reaches the Teams webhook and the duty mailbox."""
    bad = clean_replay.obs.assign(visibility=clean_replay.obs["visibility"] * 0.3)
    files = write_days(bad, tmp_path / "incoming", 5)
    with webhook_receiver(tmp_path / "hook") as hook, smtp_receiver(tmp_path / "smtp") as smtp:
        monkeypatch.setenv("TEAMS_URL", hook.url)
        monkeypatch.setenv("SMTP_PASSWORD", smtp.password)
        cfg = parse_config({**project.raw,
                            "monitor": {"window": "2d", "step": "12h", "windows": 2, "min_samples": 12,
                                        "max_observation_age": "6h", "max_input_age": "6h",
                                        "action": "recommend_rollback"},
                            "notify": {"channels": [
                                {"type": "webhook", "format": "teams", "url_env": "TEAMS_URL",
                                 "events": ["incident"]},
                                {"type": "email", "host": smtp.host, "port": smtp.port, "security": "none",
                                 "sender": "wxops@example.org", "to": ["duty@example.org"],
                                 "username": smtp.user, "password_env": "SMTP_PASSWORD"}]}})
        start = bad["time"].min().normalize()
        results = [monitor_once(cfg, project_dir=tmp_path, observations=files[:day],
                                prediction_log=clean_replay.log, now=start + pd.Timedelta(days=day))
                   for day in (3, 5)]
        posts, mails = hook.messages(), smtp.messages()
    assert results[0].exit_code == EXIT_INCIDENT and results[1].incident is None  # opened once
    (post,) = posts
    card = post["body"]["attachments"][0]["content"]  # type: ignore[index]
    assert card["body"][0]["text"] == f"visibility version {project.version}: live-score incident"
    assert "rollback" in card["body"][-1]["text"]  # the action and its outcome
    (mail,) = mails
    assert mail["X-Wxops-Event"] == "incident"  # type: ignore[index]
    assert "rules: mae, rmse" in mail.get_payload()  # type: ignore[attr-defined]
