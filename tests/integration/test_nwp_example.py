"""examples/nwp: the generator writes it, and it runs end to end on a local Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wxops import load_config, run_pipeline
from wxops.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nwp" / "wxops.yaml"


@pytest.mark.slow
def test_generated_example_runs_on_local_dask(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "nwp", str(tmp_path), "--stations", "2", "--years", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "wxops.yaml").read_text() == EXAMPLE.read_text()
    assert len(list((tmp_path / "nwp").glob("*.nc"))) == 1
    cfg = load_config(tmp_path / "wxops.yaml")
    assert cfg.execution.executor == "dask"
    out = run_pipeline(cfg, project_dir=tmp_path)
    assert set(out.metrics) == {m.name for m in cfg.models}
    assert out.version == "1"
    # Through the release gate: the raw NWP forecast is a reference of the replay.
    assert out.gate_passed is not None, out.release_message
    summary = json.loads((tmp_path / "wxops-out" / "verify" / "nwp-t2m-v1" /
                          "verification.json").read_text())
    assert {r["against"] for r in summary["gate"]["rows"]} == {"climatology", "nwp", "champion"}
    assert "nwp" in {row["source"] for row in summary["replay"]["scores"]}
