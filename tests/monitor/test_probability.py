"""Monitoring a probability version: live Brier score and reliability per threshold.

The monitor project's pipeline run trained a ``type: probability`` configuration next to
its ridge; it is registered as ``visibility-prob`` and a real ``wxops serve`` answers the
two weeks of held-out hours with its probabilities (the calibrated replay). The drifted
replay logs the same hours, through the service's own prediction-log writer, with the
probabilities biased up (0.2 + 1.2 p: low visibility forecast far too often), as a model
whose calibration drifted would answer. The monitor must stay quiet on the first and open
a live-score incident naming the reliability breach on the second.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from tests.monitor.conftest import PREDICTORS, Project, write_days
from tests.probability_version import ProbabilityVersion, register_probability_version
from wxops.config import WxopsConfig, parse_config
from wxops.monitor import EXIT_INCIDENT, EXIT_OK, monitor_once
from wxops.monitor.inputs import read_prediction_log
from wxops.monitor.rules import write_rules
from wxops.monitor.settings import MonitorConfig

COLUMNS = ["p_below_1000", "p_below_5000"]
MONITOR = {"window": "4d", "step": "12h", "windows": 2, "min_samples": 48,
           "max_observation_age": "6h", "max_input_age": "6h", "action": "none"}


class Setup:
    def __init__(self, project: Project, version: ProbabilityVersion, obs: pd.DataFrame,
                 calibrated: Path, drifted: Path) -> None:
        self.project, self.version, self.obs = project, version, obs
        self.calibrated, self.drifted = calibrated, drifted

    def raw(self) -> dict[str, object]:
        return {**self.project.raw, "monitor": MONITOR}

    def config(self) -> WxopsConfig:
        return parse_config(self.raw())


def _serve(uri: str, model: str, rows: pd.DataFrame, log: Path) -> None:
    """The hours through a real server, one request per day, into a SQLite log."""
    from wxops.serve import ServeSettings, build_app, run_in_thread
    from wxops.serve.settings import PredictionLogSettings

    settings = ServeSettings(tracking_uri=uri, port=0, poll_seconds=0, auth=False, model=model,
                             prediction_log=PredictionLogSettings(path=log, flush_seconds=0.1))
    server = run_in_thread(build_app(settings))
    try:
        deadline = time.monotonic() + 60
        while requests.get(f"{server.url}/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.05)
        for _, day in rows.groupby(rows["time"].dt.floor("D")):
            records = json.loads(day[["time", *PREDICTORS]].to_json(orient="records",
                                                                     date_format="iso"))
            resp = requests.post(f"{server.url}/predict", json=records, timeout=30)
            assert resp.status_code == 200, resp.text
    finally:
        server.stop()


def _drift_log(calibrated: Path, drifted: Path) -> None:
    """The calibrated log's entries again, with miscalibrated probabilities, written by
    the service's prediction-log writer."""
    import sqlite3

    from wxops.serve.predlog import LogEntry, SQLiteStore, _row

    with sqlite3.connect(calibrated) as conn:
        entries = conn.execute("SELECT received_at, endpoint, model_name, model_version, run_id, "
                               "inputs, outputs FROM predictions ORDER BY id").fetchall()
    store = SQLiteStore(drifted)
    rows = []
    for received, endpoint, name, version, run_id, inputs, outputs in entries:
        prob = np.column_stack([json.loads(outputs)[c] for c in COLUMNS])
        sharp = np.minimum(0.2 + 1.2 * prob, 1.0)  # biased up: fog forecast far too often
        cols = {k: np.asarray(v) for k, v in json.loads(inputs).items()}
        cols["time"] = cols["time"].astype("datetime64[ms]")
        stamp = pd.Timestamp(received).timestamp()
        rows.append(_row(LogEntry(stamp, endpoint, name, version, run_id, cols, sharp,
                                  tuple(COLUMNS))))
    store.write(rows)
    store.close()


@pytest.fixture(scope="module")
def setup(project: Project, held_out: pd.DataFrame,
          tmp_path_factory: pytest.TempPathFactory) -> Setup:
    version = register_probability_version(project.run_id, project.uri, base="visibility")
    root = tmp_path_factory.mktemp("prob-monitor")
    calibrated, drifted = root / "calibrated.db", root / "drifted.db"
    _serve(project.uri, f"{version.name}/{version.version}", held_out, calibrated)
    _drift_log(calibrated, drifted)
    return Setup(project, version, held_out, calibrated, drifted)


def test_the_log_holds_the_served_probabilities(setup: Setup) -> None:
    preds = read_prediction_log(setup.calibrated)
    assert len(preds) == len(setup.obs)
    assert preds["model_name"].unique().tolist() == [setup.version.name]
    assert (preds["p_below_1000"] <= preds["p_below_5000"]).all()
    assert preds["forecast"].isna().all()


def test_calibrated_replay_stays_healthy(setup: Setup, tmp_path: Path) -> None:
    files = write_days(setup.obs, tmp_path / "incoming", 14)
    now = setup.obs["time"].min().normalize() + pd.Timedelta(days=14)
    result = monitor_once(setup.config(), project_dir=tmp_path, observations=files,
                          prediction_log=setup.calibrated, now=now, act=False)
    assert result.exit_code == EXIT_OK, [a.message for a in result.alerts]
    assert result.thresholds == [1000.0, 5000.0]
    for score in ("brier_1000", "brier_5000", "reliability_1000", "reliability_5000"):
        assert result.promotion[score] >= 0, result.promotion  # the pipeline's test-block record
        assert np.isfinite(result.latest_scores[score])
    # the default rule: the calibration test, per threshold, quiet on calibrated forecasts
    assert set(result.live_breach_windows) == {"calibration_1000", "calibration_5000"}
    assert all(n == 0 for n in result.live_breach_windows.values())
    for label in ("1000", "5000"):
        assert result.latest_scores[f"calibration_{label}"] > 0.01  # the test's p-value
        assert 0 < result.latest_scores[f"expected_brier_{label}"] < 0.25
        assert result.latest_scores[f"forecast_events_{label}"] > 0
    drifted_features = {d["feature"] for d in result.drift_latest}
    assert not drifted_features & set(COLUMNS)  # outputs are not watched as inputs
    # the live Brier score is the scores package's, on the joined pairs of the last window
    from scores.probability import brier_score

    last = pd.Timestamp(result.scores.dropna(subset=["brier_5000"]).index[-1])
    win = pd.Timedelta(days=4)
    lead = pd.Timedelta(hours=setup.config().features.lead_time or 0)
    preds = read_prediction_log(setup.calibrated)
    preds["valid"] = preds["time"] + lead
    obs = setup.obs[setup.obs["time"] < now].rename(columns={"time": "valid"})  # as delivered
    joined = preds.merge(obs[["valid", "visibility"]], on="valid")
    part = joined[(joined["valid"] > last - win) & (joined["valid"] <= last)]
    import xarray as xr

    want = float(brier_score(xr.DataArray(part["p_below_5000"].to_numpy()),
                             xr.DataArray((part["visibility"] < 5000).to_numpy(dtype=float))))
    assert result.scores.loc[last, "n"] == len(part)
    assert result.scores.loc[last, "brier_5000"] == pytest.approx(want, rel=1e-12)


def test_drifted_calibration_raises_the_incident(setup: Setup, tmp_path: Path) -> None:
    import typer

    from wxops.monitor.cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    config = tmp_path / "wxops.yaml"
    raw = setup.raw()  # the default test and the reliability-term rule, both
    raw["monitor"] = {**MONITOR, "probability_rules": [
        {"score": "calibration"}, {"score": "reliability", "max_increase": 0.01}]}
    config.write_text(yaml.safe_dump(raw))
    write_days(setup.obs, tmp_path / "incoming", 14)
    now = str(setup.obs["time"].min().normalize() + pd.Timedelta(days=14))
    common = ["monitor", "--config", str(config), "--now", now,
              "--observations-dir", str(tmp_path / "incoming")]
    runner = CliRunner()
    healthy = runner.invoke(app, [*common, "--prediction-log", str(setup.calibrated)])
    assert healthy.exit_code == EXIT_OK, healthy.output
    drifted = runner.invoke(app, [*common, "--prediction-log", str(setup.drifted)])
    assert drifted.exit_code == EXIT_INCIDENT, drifted.output
    assert "calibration drifted: live reliability_1000" in drifted.output
    assert "calibration drifted: live reliability_5000" in drifted.output
    for label in ("1000", "5000"):  # biased up: far more events forecast than observed
        found = re.search(rf"calibration drifted: P\(event at {label}\) not reliable \(p \S+ < "
                          r"0\.01\) for \d+ windows of 4d: ([\d.]+) events forecast, (\d+) observed",
                          drifted.output)
        assert found and float(found[1]) > 2 * int(found[2]), drifted.output
    out = tmp_path / "wxops-out" / "monitor"
    status = json.loads((out / "status.json").read_text())
    assert status["kind"] == "probability" and status["incident_open"]
    breached = {a["subject"] for a in status["alerts"] if a["kind"] == "live_score"}
    assert {"reliability_1000", "reliability_5000", "calibration_1000", "calibration_5000"} <= breached
    page = (out / "report" / "index.html").read_text()
    assert "reliability_5000" in page and "live-score incident" in page
    families = {f.name: f for f in text_string_to_metric_families((out / "metrics.prom").read_text())}
    live = {s.labels["score"]: s.value for s in families["wxops_monitor_live_score"].samples}
    promoted = {s.labels["score"]: s.value for s in families["wxops_monitor_promotion_score"].samples}
    assert live["reliability_5000"] > promoted["reliability_5000"] + 0.01
    windows = {s.labels["score"]: s.value
               for s in families["wxops_monitor_live_breach_windows"].samples}
    assert windows["reliability_5000"] >= 2


def test_probability_rule_needs_a_margin() -> None:
    with pytest.raises(ValueError, match="needs max_worse_pct or max_increase"):
        MonitorConfig.model_validate({"probability_rules": [{"score": "reliability"}]})
    with pytest.raises(ValueError, match="'calibration' rule is a test at level alpha"):
        MonitorConfig.model_validate({"probability_rules": [{"score": "calibration",
                                                             "max_worse_pct": 10}]})
    with pytest.raises(ValueError, match="at most one 'calibration' rule"):
        MonitorConfig.model_validate({"probability_rules": [{"score": "calibration"},
                                                            {"score": "calibration", "alpha": 0.05}]})
    for bad in ({"alpha": 0}, {"alpha": 1.5}, {"lag_hours": -1}):
        with pytest.raises(ValueError, match=r"alpha|lag_hours"):
            MonitorConfig.model_validate({"probability_rules": [{"score": "calibration", **bad}]})
    with pytest.raises(ValueError, match="probability_rules"):
        MonitorConfig.model_validate({"probability_rules": [{"score": "auc", "max_increase": 1}]})


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: apt-get install prometheus")
def test_promtool_probability_alert(tmp_path: Path) -> None:
    """The probability alert fires at ``windows`` breached windows naming the score; the
    value-score alert stays silent on it."""
    paths = write_rules(MonitorConfig(windows=2), tmp_path)
    tests = {"rule_files": [paths["rules"].name], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": 'wxops_monitor_live_breach_windows{score="reliability_1000"}',
             "values": "0 1 2 2"},
            {"series": 'wxops_monitor_live_breach_windows{score="brier_1000"}', "values": "0 0 0 0"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "WxopsProbabilityDegraded", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "WxopsLiveScoreDegraded", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "WxopsProbabilityDegraded", "exp_alerts": [{
                "exp_labels": {"severity": "critical", "score": "reliability_1000"},
                "exp_annotations": {
                    "summary": "Live reliability_1000 of the probability forecasts beyond its "
                               "limit for 2 windows",
                    "description": "The champion's live reliability_1000 (calibration test, "
                                   "Brier score or its reliability term at that threshold) over "
                                   "7d windows stayed beyond its limit: the probabilities are no "
                                   "longer calibrated as verified. The "
                                   "monitor recorded an incident and ran its corrective action "
                                   "(recommend_rollback)."}}]},
        ]}]}
    spec = tmp_path / "tests.yml"
    spec.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run([str(PROMTOOL), "test", "rules", spec.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_log_entry_with_short_probability_columns_is_refused() -> None:
    from wxops.errors import MonitorError
    from wxops.monitor.inputs import explode_requests

    raw = pd.DataFrame([{
        "received_at": "2026-01-01T00:00:00+00:00", "model_name": "visibility-prob",
        "model_version": "1", "run_id": "r",
        "inputs": json.dumps({"time": [0, 3_600_000], "t2m": [1.0, 2.0]}),
        "outputs": json.dumps({"p_below_1000": [0.1, 0.2], "p_below_5000": [0.3]})}])
    with pytest.raises(MonitorError, match=r"log.db: an entry's output columns differ in length "
                                           r"\{'p_below_1000': 2, 'p_below_5000': 1\}"):
        explode_requests(raw, source="log.db")
    raw["outputs"] = json.dumps({"p_below_1000": [0.1], "p_below_5000": [0.3]})
    with pytest.raises(MonitorError, match=r"log\.db: an entry has 2 input rows but 1 outputs"):
        explode_requests(raw, source="log.db")
