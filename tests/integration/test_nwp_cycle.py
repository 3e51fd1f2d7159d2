"""Journey 5 (JOURNEYS.md): an NWP MOS model through the whole cycle, as a user runs it.

``wxops synth nwp`` -> ``wxops run -c`` (version 1 champion through the multi-station
gate against climatology and the raw NWP) -> ``wxops verify`` (report by lead time ×
station × hour UTC, read from the stored test table) -> a MOS with a per-station bias
(``station_onehot``) -> ``wxops run`` gates it against the raw NWP and the champion, with
p-values -> ``wxops serve`` answers requests keyed by station, init time and lead time
-> ``wxops monitor`` joins the logged forecasts with the observations.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml

from tests.integration.cli_helpers import serving, wait_for_model, wxops

pytestmark = pytest.mark.slow

PREDICTORS = ["t2m", "td2m", "pressure", "wind_speed", "wind_dir", "total_cloud"]


def _configure(folder: Path, derived: list[str]) -> None:
    raw = yaml.safe_load((folder / "wxops.yaml").read_text())
    raw["execution"] = {"executor": "local"}
    raw["models"] = [{"name": "ridge", "type": "linear"}]
    raw["features"]["derived"] = derived
    raw["gate"]["bootstrap_samples"] = 200
    (folder / "wxops.yaml").write_text(yaml.safe_dump(raw))


def _cli(folder: Path, *args: str) -> str:
    out = wxops(folder, *args, "-c", "wxops.yaml")
    assert out.returncode == 0, out.stdout
    assert "Traceback" not in out.stdout
    return " ".join(out.stdout.split())


def test_nwp_mos_through_verify_promote_serve_and_monitor(tmp_path: Path) -> None:
    synth = wxops(tmp_path, "synth", "nwp", str(tmp_path), "--stations", "2", "--years", "1")
    assert synth.returncode == 0, synth.stdout
    _configure(tmp_path, ["dewpoint_depression", "wind_components", "cyclic_time"])
    first = _cli(tmp_path, "run", "--quiet")
    assert "version 1 is champion (1.0.0, initial)" in first, first

    # verify reads the stored test table: strata by lead time × station × hour (UTC)
    verify = _cli(tmp_path, "verify", "-m", "1")
    assert "rmse vs nwp" in verify and "PASS" in verify
    page = (tmp_path / "wxops-out" / "verify" / "nwp-t2m-v1" / "index.html").read_text()
    assert "RMSE by lead time × station × hour UTC" in page
    assert "+6 h · S0001 · " in page and "RMSE by station" in page

    # a per-station bias: the station becomes an input (a breaking change), gated
    # against the raw NWP and the champion with significance on the multi-station replay
    _configure(tmp_path, ["dewpoint_depression", "wind_components", "cyclic_time",
                          "station_onehot"])
    second = _cli(tmp_path, "run", "--quiet")
    assert "version 2 is champion (2.0.0, breaking: inputs added: ['station'])" in second, second
    summary = json.loads((tmp_path / "wxops-out" / "verify" / "nwp-t2m-v2" /
                          "verification.json").read_text())
    rows = {r["against"]: r for r in summary["gate"]["rows"]}
    assert rows["nwp"]["status"] == "pass" and rows["nwp"]["p_value"] < 0.05
    assert rows["champion"]["status"] == "pass" and rows["champion"]["p_value"] is not None
    assert summary["replay"]["strata"]["station"]  # several stations in the replay

    # serve: keyed by station, init time and lead time
    test = pd.concat(pd.read_parquet(p) for p in tmp_path.glob("mlartifacts/**/release/test-*.parquet"))
    test = test[test["init_time"] < test["init_time"].min() + pd.Timedelta(days=3)]
    test = test.drop_duplicates(["station", "init_time", "lead_time"])
    iso = "%Y-%m-%dT%H:%M:%SZ"
    body = test[["station", "init_time", "lead_time", "time", *PREDICTORS]].assign(
        init_time=test["init_time"].dt.strftime(iso), time=test["time"].dt.strftime(iso))
    log = tmp_path / "predictions.sqlite"
    with serving(tmp_path, "--model", "nwp-t2m@champion", "--poll", "0", "--prediction-log",
                 str(log), "--flush-seconds", "0.2") as url:
        assert wait_for_model(url)["model_version"] == "2"
        info = requests.get(url + "/model", timeout=10).json()
        assert info["key_columns"] == ["station", "init_time", "lead_time"]
        answer = requests.post(url + "/predict", json=body.to_dict(orient="records"), timeout=60)
        assert answer.status_code == 200, answer.text
        keys = answer.json()["keys"]
        assert keys["station"] == body["station"].tolist()
        assert keys["lead_time"] == body["lead_time"].tolist()
        first_valid = test["init_time"].iloc[0] + pd.Timedelta(hours=test["lead_time"].iloc[0])
        assert keys["valid_time"][0] == first_valid.strftime(iso)
        no_key = requests.post(url + "/predict", json=body.drop(columns=["init_time"])
                               .head(2).to_dict(orient="records"), timeout=10)
        assert no_key.status_code == 422 and no_key.json()["field"] == "init_time"

    # monitor: the logged forecasts joined with the station observations at valid time
    now = (test["valid_time"].max() + pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    out = wxops(tmp_path, "monitor", "-c", "wxops.yaml", "--observations",
                str(tmp_path / "obs.parquet"), "--prediction-log", str(log), "--now", now,
                "--window", "3d", "--no-action")
    assert "Traceback" not in out.stdout, out.stdout
    assert f"nwp-t2m v2: exit {out.returncode}; {len(test)} pairs" in out.stdout, out.stdout
    scores = pd.read_csv(tmp_path / "wxops-out" / "monitor" / "scores.csv")
    live = scores["rmse"].dropna()
    assert not live.empty and live.iloc[-1] < 2.0  # kelvin: a MOS, not a unit mix-up
