"""Prometheus alert rules and a Grafana dashboard for the monitor's metrics.

The rules come from ``rules/alerts.yml.tmpl`` (package data) with the thresholds of the
``monitor:`` config filled in, so Prometheus alerts on exactly what the monitor judges.
``promtool check rules`` accepts the result (a test runs it).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from wxops.config import MonitorConfig, parse_duration


def render_alert_rules(cfg: MonitorConfig) -> str:
    """The alert-rules YAML for ``cfg``."""
    text = resources.files("wxops.monitor").joinpath("rules/alerts.yml.tmpl").read_text(encoding="utf-8")
    return Template(text).substitute(
        windows=cfg.windows, window=cfg.window, action=cfg.action,
        max_observation_age_s=f"{parse_duration(cfg.max_observation_age):g}",
        max_input_age_s=f"{parse_duration(cfg.max_input_age):g}",
        max_invalid_share=f"{cfg.max_invalid_share:g}", step_s=f"{parse_duration(cfg.step):g}",
    )


def _panel(pid: int, title: str, exprs: list[tuple[str, str]], *, x: int, y: int, w: int = 12,
           h: int = 8, kind: str = "timeseries", unit: str | None = None) -> dict[str, Any]:
    panel: dict[str, Any] = {
        "id": pid, "type": kind, "title": title,
        "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": legend}
                    for i, (e, legend) in enumerate(exprs)],
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
    }
    return panel


def dashboard(cfg: MonitorConfig) -> dict[str, Any]:
    """Grafana dashboard JSON (import it; pick the Prometheus data source)."""
    panels = [
        _panel(1, "Live scores vs promotion level", [
            ("wxops_monitor_live_score{score=~\"rmse|mae\"}", "live {{score}}"),
            ("wxops_monitor_promotion_score{score=~\"rmse|mae\"}", "promotion {{score}}")],
            x=0, y=0, unit="lengthm"),
        _panel(2, f"Windows beyond limit (alert at {cfg.windows})", [
            ("wxops_monitor_live_breach_windows", "{{score}}")], x=12, y=0),
        _panel(3, "Drift PSI per feature", [
            ("wxops_monitor_drift_psi", "{{feature}} ({{baseline}})")], x=0, y=8),
        _panel(4, "Drift KS per feature", [
            ("wxops_monitor_drift_ks", "{{feature}} ({{baseline}})")], x=12, y=8),
        _panel(5, "Data age", [("wxops_monitor_observation_age_seconds", "observations"),
                               ("wxops_monitor_input_age_seconds", "inputs")],
               x=0, y=16, w=8, kind="stat", unit="s"),
        _panel(6, "Joined samples (latest window)", [("wxops_monitor_joined_samples", "pairs")],
               x=8, y=16, w=8, kind="stat"),
        _panel(7, "Invalid request share", [(
            "sum(rate(wxops_requests_total{endpoint=~\"/predict|/invocations\",status=~\"4..\"}[15m]))"
            " / sum(rate(wxops_requests_total{endpoint=~\"/predict|/invocations\"}[15m]))", "share")],
            x=16, y=16, w=8, kind="stat", unit="percentunit"),
        _panel(8, "Monitor status (exit code) and open incident", [
            ("wxops_monitor_status", "exit code"), ("wxops_monitor_incident_open", "incident")],
            x=0, y=24, w=24, h=6),
        _panel(9, "Probability versions: live Brier score and reliability vs promotion", [
            ("wxops_monitor_live_score{score=~\"(brier|reliability)_.*\"}", "live {{score}}"),
            ("wxops_monitor_promotion_score{score=~\"(brier|reliability)_.*\"}",
             "promotion {{score}}")], x=0, y=30, w=24),
    ]
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                      "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "title": "wxops monitor", "uid": "wxops-monitor", "schemaVersion": 39, "version": 1,
        "tags": ["wxops", "monitoring"], "time": {"from": "now-7d", "to": "now"},
        "refresh": "1m", "panels": panels,
    }


def write_rules(cfg: MonitorConfig, out_dir: Path) -> dict[str, Path]:
    """Write ``alerts.yml`` and ``dashboard.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rules = out_dir / "alerts.yml"
    rules.write_text(render_alert_rules(cfg), encoding="utf-8")
    board = out_dir / "dashboard.json"
    board.write_text(json.dumps(dashboard(cfg), indent=2), encoding="utf-8")
    return {"rules": rules, "dashboard": board}
