"""The release cycle end to end: real pipeline runs, real MLflow registry, the real CLI.

One project goes through: a first champion; a deliberately degraded candidate that
fails the gate and stays challenger; a good retrained model that passes and becomes
champion with a release note; then, from the CLI, a refused promotion, a corrupted
artifact, a forced promotion, a rollback and ``history --at``.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from tests.release.conftest import DEGRADED, GOOD, GOOD_RETRAINED, small_config
from wxops import tracking
from wxops.exit_codes import EXIT_GATE_REJECTED
from wxops.pipeline import run_pipeline
from wxops.release.cli import register

pytestmark = pytest.mark.slow

app = typer.Typer()
register(app)
runner = CliRunner()


def _now() -> str:
    time.sleep(0.05)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    time.sleep(0.05)
    return stamp


@pytest.fixture(scope="module")
def cycle(project: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"before": _now()}
    out["r1"] = run_pipeline(small_config(GOOD), project_dir=project)
    out["after_first"] = _now()
    out["r2"] = run_pipeline(small_config(DEGRADED), project_dir=project)
    out["r3"] = run_pipeline(small_config(GOOD_RETRAINED), project_dir=project)
    out["after_third"] = _now()
    (project / "wxops.yaml").write_text(yaml.safe_dump(
        {"models": GOOD_RETRAINED, "gate": {"bootstrap_samples": 200}}))
    tracking.connect(out["r1"].tracking_uri)
    return out


def _cli(project: Path, *args: str) -> Any:
    return runner.invoke(app, [*args, "--config", str(project / "wxops.yaml")],
                         env={"COLUMNS": "250"})


def test_first_model_becomes_champion_through_the_gate(cycle):
    r1 = cycle["r1"]
    assert r1.became_champion and r1.gate_passed
    assert "version 1 is champion (1.0.0, initial)" in r1.release_message


@pytest.fixture
def connected(cycle: dict[str, Any]) -> None:
    """Each test reads the project's registry (tests/conftest.py resets MLflow's URI
    globals after every test, so the module fixture's connection does not carry over)."""
    tracking.connect(cycle["r1"].tracking_uri)


def test_degraded_candidate_fails_and_stays_challenger(cycle, connected):
    r2 = cycle["r2"]
    assert not r2.became_champion and r2.gate_passed is False
    assert "stays challenger" in r2.release_message
    assert "rmse vs champion: at most 2 % worse" in r2.release_message
    page = Path(r2.report).read_text()
    assert "FAIL" in page and "rmse vs champion" in page
    history = tracking.read_alias_history("visibility")
    rejected = [e for e in history if e["action"] == "rejected"]
    assert rejected and rejected[0]["to_version"] == "2" and rejected[0]["gate"] == "fail"


def test_good_retrained_model_becomes_champion_with_release_note(cycle, project, connected):
    r3 = cycle["r3"]
    assert r3.became_champion, r3.release_message
    aliases = tracking.alias_map("visibility")
    assert aliases["champion"] == "3" and "challenger" not in aliases  # taken from 2, then promoted
    info = tracking.get_model_version("visibility", "3")
    assert info["tags"]["wxops.semver"] == "1.1.0"
    assert info["tags"]["wxops.change_class"] == "incremental"
    note = info["description"]
    assert note.startswith("# visibility 1.1.0 (registry version 3)")
    assert "Replaces:** version 1 (1.0.0)" in note and "model.max_iter" in note
    assert list(project.glob("mlartifacts/**/release/release_note_1.1.0.md"))
    assert list(project.glob("mlartifacts/**/verification/index.html"))


def test_cli_release_cycle(cycle, project, fresh_env):
    # verify the champion from the CLI
    res = _cli(project, "verify", "--model", "visibility@champion")
    assert res.exit_code == 0, res.output
    assert "report:" in res.output and "rmse vs climatology" in res.output

    # a version that does not exist
    res = _cli(project, "promote", "99", "--reason", "typo")
    assert res.exit_code == 1 and "has no version '99'" in res.output
    assert "[1, 2, 3]" in res.output

    # the degraded version again: refused, recorded, no alias change
    n_before = len(tracking.read_alias_history("visibility"))
    res = _cli(project, "promote", "2", "--reason", "try again")
    assert res.exit_code == EXIT_GATE_REJECTED and "stays challenger" in res.output
    assert tracking.alias_map("visibility")["champion"] == "3"
    assert len(tracking.read_alias_history("visibility")) == n_before + 1

    # a corrupted artifact: clear error, no alias change, the attempt recorded
    source = tracking.get_model_version("visibility", "2")["source"].rsplit("/", 1)[-1]
    pkl = next(project.glob(f"mlartifacts/**/{source}/artifacts/model.pkl"))
    good_bytes = pkl.read_bytes()
    pkl.write_bytes(b"not a pickle")
    res = _cli(project, "promote", "2", "--force", "--reason", "broken")
    assert res.exit_code == 1 and "technical tests failed: load" in res.output
    assert tracking.alias_map("visibility")["champion"] == "3"
    last = tracking.read_alias_history("visibility")[-1]
    assert last["gate"] == "technical-fail" and last["action"] == "rejected"
    pkl.write_bytes(good_bytes)

    # forced past the gate: recorded as forced
    res = _cli(project, "promote", "2", "--force", "--reason", "operator override")
    assert res.exit_code == 0 and "forced past" in res.output
    last = tracking.read_alias_history("visibility")[-1]
    assert last["forced"] is True and last["to_version"] == "2" and last["from_version"] == "3"
    forced_at = _now()

    # roll back twice: 2 -> 3 -> 1
    res = _cli(project, "rollback", "--reason", "forced model misbehaves")
    assert res.exit_code == 0 and "from version 2 to version 3" in res.output
    res = _cli(project, "rollback", "--reason", "back to the first")
    assert res.exit_code == 0 and "to version 1" in res.output
    assert tracking.alias_map("visibility")["champion"] == "1"
    res = _cli(project, "rollback", "--reason", "again")
    assert res.exit_code == 1 and "nothing to roll back to" in res.output

    # which version served when
    for when, expected in ((cycle["before"], "none"), (cycle["after_first"], "version 1"),
                           (cycle["after_third"], "version 3"), (forced_at, "version 2"),
                           (_now(), "version 1")):
        res = _cli(project, "history", "--at", when)
        assert res.exit_code == 0 and expected in res.output, (when, res.output)
    res = _cli(project, "history", "--at", "last tuesday")
    assert res.exit_code == 1 and "cannot read time" in res.output
    res = _cli(project, "history")
    assert res.exit_code == 0 and "rollback" in res.output and "rejected" in res.output


def test_rollback_without_previous_champion(tmp_path, fresh_env):
    (tmp_path / "wxops.yaml").write_text("seed: 1\n")
    res = _cli(tmp_path, "rollback", "--reason", "nothing here")
    assert res.exit_code == 1 and "no champion to roll back" in res.output
    res = _cli(tmp_path, "promote", "1", "--reason", "x")
    assert res.exit_code == 1 and "has no version '1'" in res.output
    res = _cli(tmp_path, "promote", "1", "--reason", " ")
    assert res.exit_code == 1
