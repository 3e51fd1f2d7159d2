"""Journey 1 (laptop lifecycle), lead-time mode: the gate looks at fog, not only at metres.

The installed ``wxops run`` in a fresh folder on the reference data with
``features.lead_time: 3`` and one configuration that fits visibility in metres (it never
forecasts fog, as the issue's champion did): the run ends with the five-line
verification summary, the version stays challenger and the rule that rejects it is
named; the test-block scores are metrics of the version's run; the report carries the
event tables by season, hour and lead time with n and event counts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from wxops.exit_codes import EXIT_GATE_REJECTED

pytestmark = pytest.mark.slow


def test_fog_blind_model_is_rejected_by_a_named_event_rule(tmp_path: Path) -> None:
    cfg = {"features": {"lead_time": 3},
           "models": [{"name": "gbm-metres", "type": "gradient_boosting", "max_iter": 30}],
           "gate": {"bootstrap_samples": 200}}
    (tmp_path / "wxops.yaml").write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([str(Path(sys.executable).parent / "wxops"), "run", "-q", "-c",
                           "wxops.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=env)
    out = done.stdout
    # The gate rejects the version: the distinct code schedulers act on (wxops.exit_codes).
    assert done.returncode == EXIT_GATE_REJECTED, done.stderr[-3000:]
    lines = out.strip().splitlines()
    summary = lines[-5:]
    assert summary[0].startswith("verification of version 1 on the test block"), out
    assert summary[1].strip().startswith("rmse") and "persistence" in summary[1]
    assert summary[2].strip().startswith("ets_1000") and "events hit" in summary[2]
    assert summary[3].strip().startswith("ets_5000")
    assert summary[4].strip().startswith("gate FAILED") and \
        "ets_1000 vs persistence: skill > 0" in summary[4], out
    assert "stays challenger" in out and "ets_1000 vs persistence: skill > 0" in out
    assert "selection: " in out and "No configuration beats persistence on ets_1000" in out

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    version = client.get_model_version("visibility", "1")
    metrics = client.get_run(version.run_id).data.metrics
    assert {"test_rmse", "test_ets_1000", "test_ets_1000_persistence", "test_hits_1000",
            "test_brier_1000_climatology", "gate_ets_1000", "gate_n"} <= set(metrics)
    assert metrics["test_ets_1000"] < metrics["test_ets_1000_persistence"]
    assert "val_ets_1000" in client.get_run(version.run_id).data.metrics

    page = (tmp_path / "wxops-out" / "verify" / "visibility-v1" / "index.html").read_text()
    for heading in ("ETS 1000 by season", "ETS 1000 by hour (UTC)", "ETS 1000 by lead time",
                    "RMSE by month (block month)", "most begin with the row of 06:00 UTC",
                    "95 % CI", "dm-hln", "block-bootstrap"):
        assert heading in page, heading
