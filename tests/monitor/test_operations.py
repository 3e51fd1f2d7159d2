"""Operations replay: a real ``wxops serve`` answered the held-out hours; observations
arrive day by day; the monitor runs as cron would after each delivery."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from tests.monitor.conftest import Project, Replay, write_days
from wxops.monitor import EXIT_INCIDENT, EXIT_OK, monitor_once, save_outputs, write_status_page
from wxops.monitor.metrics import MonitorMetrics

pytestmark = pytest.mark.slow


def _run(project: Project, replay: Replay, obs: pd.DataFrame, folder: Path, days: list[int],
         **monitor: object) -> list:
    cfg = project.config(**monitor)
    files = write_days(obs, folder / "incoming", max(days))
    results = []
    for day in days:
        now = obs["time"].min().normalize() + pd.Timedelta(days=day)
        results.append(monitor_once(cfg, project_dir=folder, observations=files[:day],
                                    prediction_log=replay.log, now=now))
    return results


def test_unchanged_data_raises_no_alert(project: Project, clean_replay: Replay, tmp_path: Path) -> None:
    results = _run(project, clean_replay, clean_replay.obs, tmp_path, [3, 8, 14])
    for res in results:
        assert res.alerts == [] and res.exit_code == EXIT_OK, [a.message for a in res.alerts]
    last = results[-1]
    assert last.version == project.version and last.promotion["rmse"] > 0
    fed = clean_replay.obs["time"] < clean_replay.obs["time"].min().normalize() + pd.Timedelta(days=14)
    assert last.joined_total == int(fed.sum())  # every hour delivered so far is verified
    observed = [d for d in last.drift_latest if d["baseline"] == "observed"]
    assert observed and all(d["psi"] == pytest.approx(0.0, abs=1e-9) for d in observed)


def test_sensor_bias_fires_drift_naming_the_feature(project: Project, biased_replay: Replay,
                                                     tmp_path: Path) -> None:
    windows = 2
    results = _run(project, biased_replay, biased_replay.obs, tmp_path, [2, 4], windows=windows)
    drifted = [{a.subject for a in r.alerts if a.kind == "drift"} for r in results]
    assert drifted[-1] == {"t2m"}, drifted  # within window (2 d) x windows of the first obs
    alert = next(a for a in results[-1].alerts if a.kind == "drift")
    assert alert.evidence["baseline"] == "observed"
    assert alert.evidence["mean_departure"] == pytest.approx(3.0, abs=0.01)
    assert results[-1].exit_code >= 4


def test_degraded_labels_open_one_incident_and_act(project: Project, clean_replay: Replay,
                                                   tmp_path: Path) -> None:
    from wxops import tracking

    bad = clean_replay.obs.assign(visibility=clean_replay.obs["visibility"] * 0.3)
    results = _run(project, clean_replay, bad, tmp_path, [3, 5], action="recommend_rollback")
    first, second = results
    assert {a.subject for a in first.alerts if a.kind == "live_score"} == {"rmse", "mae"}
    assert first.exit_code == EXIT_INCIDENT and first.incident is not None
    # the only champion ever: no rollback target, said so, with the evidence recorded
    assert first.incident.details["target"] is None and "first champion" in first.incident.outcome
    assert second.incident is None and second.incident_open  # recorded once, still open
    assert (tmp_path / "wxops-out/monitor/incidents.jsonl").read_text().count("\n") == 1
    runs = tracking.search_runs("visibility-monitor", "tags.`wxops.action` = 'recommend_rollback'")
    assert first.incident.mlflow_run_id in {r["run_id"] for r in runs}
    record = tracking.get_run_record(first.incident.mlflow_run_id)
    assert record["params"]["action"] == "recommend_rollback" and record["metrics"]["live_rmse"] > 0
    # status page and metrics from the same run
    save_outputs(second, tmp_path / "out")
    page = write_status_page(tmp_path / "out").read_text()
    assert "live-score incident" in page and "scores.png" in page and "drift.png" in page
    metrics = MonitorMetrics()
    metrics.update(second)
    text = metrics.write(tmp_path / "m.prom").read_text()
    labels = {k for fam in text_string_to_metric_families(text) for s in fam.samples for k in s.labels}
    assert labels <= {"score", "feature", "baseline", "name", "version"}  # names only, no payloads
    assert "wxops_monitor_incident_open 1.0" in text


def test_retrain_action_runs_the_pipeline(project: Project, clean_replay: Replay, tmp_path: Path) -> None:
    bad = clean_replay.obs.assign(visibility=clean_replay.obs["visibility"] * 0.3)
    (res,) = _run(project, clean_replay, bad, tmp_path, [3], action="retrain")
    assert res.incident is not None and res.incident.details["retrained"] is True
    assert res.incident.outcome.startswith("retrained: version")


def test_cli_exit_codes_and_report(project: Project, clean_replay: Replay, tmp_path: Path) -> None:
    import typer

    from wxops.monitor.cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `monitor` a sub-command
    config = tmp_path / "wxops.yaml"
    config.write_text(yaml.safe_dump({**project.raw, "monitor": {
        "window": "2d", "step": "12h", "windows": 2, "min_samples": 12, "action": "none"}}))
    obs = write_days(clean_replay.obs, tmp_path / "incoming", 4)
    now = str(clean_replay.obs["time"].min().normalize() + pd.Timedelta(days=4))
    runner = CliRunner()
    common = ["monitor", "--config", str(config), "--prediction-log", str(clean_replay.log), "--now", now]
    ok = runner.invoke(app, [*common, *[arg for p in obs for arg in ("--observations", str(p))]])
    assert ok.exit_code == EXIT_OK, ok.output
    late = runner.invoke(app, [*common[:-1], str(pd.Timestamp(now) + pd.Timedelta(days=1)),
                               "--observations-dir", str(tmp_path / "incoming")])
    assert late.exit_code == 3 and "newest observation is" in late.output
    broken = tmp_path / "broken.csv"
    broken.write_text("time,vis\n1980-12-01T00:00,100\n")
    bad = runner.invoke(app, [*common, "--observations", str(broken)])
    assert bad.exit_code == 1 and "broken.csv: missing column(s) ['visibility']" in bad.output
    report = runner.invoke(app, ["monitor", "report", "--config", str(config)])
    assert report.exit_code == 0 and Path(report.stdout.strip()).is_file()
    rules = runner.invoke(app, ["monitor", "rules", "--config", str(config), "--out", str(tmp_path / "r")])
    assert rules.exit_code == 0 and (tmp_path / "r/alerts.yml").is_file()


def test_watch_mode_processes_new_files_then_stops(project: Project, clean_replay: Replay, tmp_path: Path) -> None:
    import typer

    from wxops.monitor.cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    config = tmp_path / "wxops.yaml"
    config.write_text(yaml.safe_dump({**project.raw, "monitor": {
        "window": "2d", "step": "12h", "windows": 2, "min_samples": 12, "action": "none"}}))
    write_days(clean_replay.obs, tmp_path / "incoming", 3)
    now = str(clean_replay.obs["time"].min().normalize() + pd.Timedelta(days=3))
    res = CliRunner().invoke(app, ["monitor", "--config", str(config), "--prediction-log", str(clean_replay.log),
                                   "--now", now, "--watch", "--observations-dir", str(tmp_path / "incoming"),
                                   "--interval", "0.1", "--max-cycles", "1", "--metrics-port", "0"])
    assert res.exit_code == 0, res.output
    assert "monitor metrics on http://127.0.0.1:" in res.output and ": exit 0;" in res.output
    assert (tmp_path / "wxops-out/monitor/status.json").is_file()
