"""Probability versions in the registry, through the installed ``wxops`` command.

One project in a temporary folder: the first run registers the best probability
configuration (by validation Brier skill) as ``visibility-prob`` version 1, judged
against climatology only, and it becomes champion; a second run with a stricter
probability gate registers version 2, judged against climatology and the champion, which
fails and stays challenger (exit 6); then verify, a forced promotion with its release
note, the history and a rollback, all with ``--model visibility-prob``, and the
deterministic model untouched throughout.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from tests.integration.cli_helpers import wxops
from wxops.config import parse_config
from wxops.errors import ConfigError, ReleaseError
from wxops.exit_codes import EXIT_GATE_REJECTED
from wxops.release.cycle import resolve_model_version
from wxops.release.probability_cycle import parse_outputs

pytestmark = pytest.mark.slow

MODELS = [
    {"name": "gbm-short", "type": "gradient_boosting", "max_iter": 10},
    {"name": "prob-tiny", "type": "probability", "max_iter": 3, "learning_rate": 0.02},
    {"name": "prob-small", "type": "probability", "max_iter": 15},
]


def _config(folder: Path, **probability_gate: Any) -> None:
    # 12 test-block events below 1000 m in the reference year: those rules say "too few
    # events"; the 153 below 5000 m decide. A replay cycle every 6 h keeps the
    # deterministic gate quick.
    raw = {"models": MODELS, "gate": {"bootstrap_samples": 200, "replay_cycle_hours": 6,
                                      "probability": {"min_events": 50, **probability_gate}}}
    (folder / "wxops.yaml").write_text(yaml.safe_dump(raw))


def _client(folder: Path) -> MlflowClient:
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("prob-versions")
    _config(folder)
    first = wxops(folder, "run", "-q")
    r1 = json.loads((folder / "wxops-out" / "result.json").read_text())
    # the same configurations, a gate no forecast passes: version 2 differs only in the
    # probability gate, so the deterministic model and its registration are cached
    MODELS[2]["max_iter"] = 16
    _config(folder, min_bss=0.99)
    second = wxops(folder, "run", "-q")
    r2 = json.loads((folder / "wxops-out" / "result.json").read_text())
    return {"folder": folder, "first": first, "second": second, "r1": r1, "r2": r2}


def test_first_probability_version_is_champion_vs_climatology(project: dict[str, Any]) -> None:
    first, r1 = project["first"], project["r1"]
    assert first.returncode == 0, first.stdout
    metrics = r1["metrics"]
    best = max(("prob-tiny", "prob-small"), key=lambda n: metrics[n]["val_bss_1000"]
               + metrics[n]["val_bss_5000"])
    assert r1["probability_best"] == best
    assert (r1["probability_model"], r1["probability_version"]) == ("visibility-prob", "1")
    assert r1["probability_champion"] and r1["probability_gate_passed"]
    assert f"probability: {best} -> visibility-prob version 1 [champion]" in first.stdout
    client = _client(project["folder"])
    v1 = client.get_model_version("visibility-prob", "1")
    assert v1.tags["config_name"] == best and v1.tags["wxops.output"] == "probability"
    assert v1.tags["pipeline_run_id"] == r1["run_id"]
    verified = json.loads((project["folder"] / "wxops-out" / "verify" / "visibility-prob-v1"
                           / "verification.json").read_text())
    outputs = verified["technical"]["probe"]["signature"]["outputs"]
    assert [o["name"] for o in outputs] == ["p_below_1000", "p_below_5000"]
    assert verified["champion"] is None
    assert all(r["status"] == "skipped" for r in verified["gate"]["rows"]
               if r["against"] == "champion")
    assert "bss_1000" in v1.description and "events_1000" in v1.description
    # the deterministic version is its own registered model, as before
    assert str(client.get_model_version_by_alias("visibility", "champion").version) == "1"


def test_stricter_gate_rejects_version_2_against_the_champion(project: dict[str, Any]) -> None:
    second, r2 = project["second"], project["r2"]
    assert second.returncode == EXIT_GATE_REJECTED, second.stdout
    assert r2["probability_version"] == "2" and r2["probability_gate_passed"] is False
    assert not r2["probability_champion"]
    assert "visibility-prob version 2 [challenger]" in second.stdout
    assert "stays challenger" in second.stdout and "skill > 0.99" in second.stdout
    verified = json.loads((project["folder"] / "wxops-out" / "verify" / "visibility-prob-v2"
                           / "verification.json").read_text())
    assert verified["champion"] == "1"
    vs_champion = [r for r in verified["gate"]["rows"] if r["against"] == "champion"]
    assert vs_champion and all(r["status"] != "skipped" for r in vs_champion), vs_champion
    assert all(r["n"] > 0 and r["events"] is not None for r in vs_champion)
    aliases = _client(project["folder"]).get_registered_model("visibility-prob").aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "1", "challenger": "2"}


def test_release_cycle_commands_with_model(project: dict[str, Any]) -> None:
    folder = project["folder"]
    verify = wxops(folder, "verify", "--model", "visibility-prob")
    assert verify.returncode == EXIT_GATE_REJECTED, verify.stdout
    assert "visibility-prob version 2: FAIL" in verify.stdout
    assert "BSS vs climatology" in verify.stdout and "events=" in verify.stdout

    promote = wxops(folder, "promote", "2", "--model", "visibility-prob", "--force",
                    "-r", "forecasters asked for it")
    assert promote.returncode == 0, promote.stdout
    assert "version 2 is champion" in promote.stdout and "forced past" in promote.stdout
    client = _client(folder)
    note = client.get_model_version("visibility-prob", "2").description
    assert "Probability scores on the test block" in note
    for label in ("1000", "5000"):
        assert f"bss_{label}" in note and f"events_{label}" in note
    assert "| n |" in note and "champion" in note

    history = wxops(folder, "history", "--model", "visibility-prob")
    assert history.returncode == 0, history.stdout
    assert "alias history of 'visibility-prob'" in history.stdout
    assert "rejected" in history.stdout and "promote" in history.stdout

    back = wxops(folder, "rollback", "--model", "visibility-prob", "-r", "too strict")
    assert back.returncode == 0, back.stdout
    assert "from version 2 to version 1" in back.stdout
    assert str(client.get_model_version_by_alias("visibility-prob", "champion").version) == "1"
    # the deterministic model's champion and alias history did not move
    assert str(client.get_model_version_by_alias("visibility", "champion").version) == "1"
    assert "too strict" not in json.dumps(client.get_registered_model("visibility").tags)


def test_unknown_model_name_is_a_clear_error(project: dict[str, Any]) -> None:
    folder = project["folder"]
    out: subprocess.CompletedProcess[str] = wxops(folder, "history", "--model", "visibilty-prob")
    assert out.returncode == 1, out.stdout
    assert ("error: model 'visibilty-prob' is not one of this project's registered models "
            "(visibility, visibility-prob") in out.stdout


def test_colliding_probability_model_name_is_refused(tmp_path: Path) -> None:
    raw = {"models": MODELS, "tracking": {"probability_model": "visibility"}}
    (tmp_path / "wxops.yaml").write_text(yaml.safe_dump(raw))
    out = wxops(tmp_path, "run", "-q")
    assert out.returncode == 1, out.stdout
    assert "probability_model 'visibility' is the registered_model's own name" in out.stdout
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "wxops-out").exists()


def test_config_and_spec_parsing() -> None:
    assert parse_config({}).tracking.probability_model == "visibility-prob"
    assert parse_config({"tracking": {"registered_model": "fog"}}).tracking.probability_model \
        == "fog-prob"
    assert parse_config({"tracking": {"probability_model": None}}).tracking.probability_model \
        is None
    with pytest.raises(ConfigError, match="probability_model is empty"):
        parse_config({"tracking": {"probability_model": " "}})
    assert parse_outputs(["p_below_1000", "p_below_5000"]) == (
        "below", {1000.0: "p_below_1000", 5000.0: "p_below_5000"})
    with pytest.raises(ReleaseError, match="'visibility' is not a probability column"):
        parse_outputs(["visibility"])
    with pytest.raises(ReleaseError, match="mix events"):
        parse_outputs(["p_below_1000", "p_above_5000"])
    cfg = parse_config({"tracking": {"probability_model": None}})
    with pytest.raises(ReleaseError, match="not one of this project's registered models"):
        resolve_model_version(cfg, "visibility-prob@champion")
    with pytest.raises(ReleaseError, match="names model 'visibility-prob' but --model says"):
        resolve_model_version(parse_config({}), "visibility-prob/2", "visibility")
