"""The generated rules under promtool, and a real Prometheus (Debian package) scraping a
real ``wxops serve`` and the monitor's ``/metrics`` on loopback until the alert fires."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml

from tests.monitor.conftest import Project, Replay, write_days
from wxops.config import MonitorConfig
from wxops.monitor import monitor_once, write_rules
from wxops.monitor.metrics import MonitorMetrics

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: apt-get install prometheus")


@needs_promtool
def test_promtool_accepts_the_generated_rules(tmp_path: Path) -> None:
    paths = write_rules(MonitorConfig(windows=3, max_observation_age="12h"), tmp_path)
    done = subprocess.run([str(PROMTOOL), "check", "rules", str(paths["rules"])], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


@needs_promtool
def test_promtool_rule_unit_tests(tmp_path: Path) -> None:
    """The drift alert fires at ``windows`` breached windows, names the feature; stale data alerts."""
    paths = write_rules(MonitorConfig(windows=2, max_observation_age="1h"), tmp_path)
    tests = {"rule_files": [paths["rules"].name], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": 'wxops_monitor_drift_breach_windows{feature="t2m",baseline="observed"}',
             "values": "0 1 2 2"},
            {"series": 'wxops_monitor_drift_breach_windows{feature="rh",baseline="observed"}',
             "values": "0 0 0 0"},
            {"series": "wxops_monitor_observation_age_seconds", "values": "60 60 7200 7200"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "WxopsInputDrift", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "WxopsInputDrift", "exp_alerts": [{
                "exp_labels": {"severity": "warning", "feature": "t2m", "baseline": "observed"},
                "exp_annotations": {
                    "summary": "Input t2m drifted (observed baseline)",
                    "description": "PSI of the served t2m against the observed baseline stayed above its "
                                   "threshold for 2 windows in a row."}}]},
            {"eval_time": "3m", "alertname": "WxopsObservationsStale", "exp_alerts": [{
                "exp_labels": {"severity": "warning"},
                "exp_annotations": {"summary": "Newest observation is 2h 0m 0s old",
                                    "description": "Live verification waits for observations; check "
                                                   "the observation feed."}}]},
        ]}]}
    spec = tmp_path / "tests.yml"
    spec.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run([str(PROMTOOL), "test", "rules", spec.name], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus missing: apt-get install prometheus")
def test_real_prometheus_scrapes_service_and_monitor_and_alert_fires(
        project: Project, clean_replay: Replay, tmp_path: Path) -> None:
    from wxops.serve import ServeSettings, build_app, run_in_thread

    bad = clean_replay.obs.assign(visibility=clean_replay.obs["visibility"] * 0.3)
    cfg = project.config(action="none")
    files = write_days(bad, tmp_path / "incoming", 3)
    result = monitor_once(cfg, project_dir=tmp_path, observations=files, prediction_log=clean_replay.log,
                          now=bad["time"].min().normalize() + pd.Timedelta(days=3))
    assert result.exit_code == 5
    metrics = MonitorMetrics()
    metrics.update(result)
    monitor_server, monitor_port = metrics.serve(0)
    service = run_in_thread(build_app(ServeSettings(tracking_uri=project.uri, port=0, poll_seconds=0,
                                                    auth=False)))
    rules = write_rules(cfg.monitor, tmp_path / "rules")["rules"]
    port = _free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": "wxops-serve", "static_configs": [{"targets": [f"127.0.0.1:{service.port}"]}]},
            {"job_name": "wxops-monitor", "static_configs": [{"targets": [f"127.0.0.1:{monitor_port}"]}]},
        ]}))
    proc = subprocess.Popen([str(PROMETHEUS), f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        firing: list[dict[str, object]] = []
        up: dict[str, str] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (firing and len(up) == 2):
            time.sleep(1)
            try:
                alerts = requests.get(f"{api}/alerts", timeout=5).json()["data"]["alerts"]
                targets = requests.get(f"{api}/query", params={"query": "up == 1"}, timeout=5).json()
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                continue
            firing = [a for a in alerts if a["labels"]["alertname"] == "WxopsLiveScoreDegraded"
                      and a["state"] == "firing"]
            up = {r["metric"]["job"]: r["value"][1] for r in targets["data"]["result"]}
        assert set(up) == {"wxops-serve", "wxops-monitor"}, up
        assert {a["labels"]["score"] for a in firing} == {"rmse", "mae"}, firing  # type: ignore[index]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        service.stop()
        monitor_server.shutdown()
