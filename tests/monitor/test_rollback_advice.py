"""A monitor incident's rollback advice reads the history of the model that breached.

The probability model (``visibility-prob``) keeps its own champion history; an incident on
it must recommend that model's previous champion and a command with ``--model``, never a
version number taken from the deterministic model's history.
"""

from __future__ import annotations

from pathlib import Path

from wxops import tracking
from wxops.config import parse_config
from wxops.monitor.actions import recommend_rollback
from wxops.release.history import record_alias_change


def _promote(name: str, previous: str | None, target: str) -> None:
    record_alias_change(name, "promote", previous=previous, target=target, reason="gate passed",
                        gate="pass", forced=False)


def test_probability_incident_reads_its_own_history(tmp_path: Path) -> None:
    tracking.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = parse_config({})
    # deterministic: 1 -> 2 -> 3 ; probability: 4 -> 7 (numbers differ on purpose)
    _promote("visibility", None, "1")
    _promote("visibility", "1", "2")
    _promote("visibility", "2", "3")
    _promote("visibility-prob", None, "4")
    _promote("visibility-prob", "4", "7")

    prob = recommend_rollback(cfg, "7", "visibility-prob")
    assert prob["model"] == "visibility-prob" and prob["target"] == "4"
    assert prob["command"].startswith("wxops rollback --model visibility-prob --reason")

    det = recommend_rollback(cfg, "3")
    assert det["model"] == "visibility" and det["target"] == "2"
    assert det["command"].startswith("wxops rollback --reason")

    # the first probability champion: nothing to roll back to, said so
    fog = parse_config({"tracking": {"probability_model": "fog-prob"}})
    _promote("fog-prob", None, "1")
    first = recommend_rollback(fog, "1", "fog-prob")
    assert first["target"] is None and "first champion" in first["why_not"]
    # a model the project does not have is named, not looked up elsewhere
    other = recommend_rollback(cfg, "1", "someone-else")
    assert other["target"] is None and "'someone-else' is not one of" in other["why_not"]
