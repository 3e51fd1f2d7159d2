"""Monitoring in operations: live verification, drift, alerts, corrective action.

``wxops monitor`` joins the service's prediction log with observations as they arrive,
scores rolling windows with the verification scores, compares them with the scores
recorded at promotion, checks input drift and data age, publishes Prometheus metrics,
alert rules, a Grafana dashboard and an HTML status page, and exits with a code a
scheduler can act on (:mod:`wxops.monitor.alerts`).

Names load on first use, so ``wxops --help`` and other commands stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wxops.monitor.alerts import EXIT_DRIFT, EXIT_ERROR, EXIT_INCIDENT, EXIT_OK, EXIT_STALE, Alert
    from wxops.monitor.drift import SeasonalBaseline, compare_with_observed, ks_statistic, psi
    from wxops.monitor.inputs import read_observations, read_prediction_log
    from wxops.monitor.join import join_forecasts, promotion_scores, score_windows
    from wxops.monitor.report import write_status_page
    from wxops.monitor.rules import dashboard, render_alert_rules, write_rules
    from wxops.monitor.run import MonitorResult, monitor_once, save_outputs

_EXPORTS: dict[str, str] = {
    "Alert": "wxops.monitor.alerts",
    "EXIT_DRIFT": "wxops.monitor.alerts",
    "EXIT_ERROR": "wxops.monitor.alerts",
    "EXIT_INCIDENT": "wxops.monitor.alerts",
    "EXIT_OK": "wxops.monitor.alerts",
    "EXIT_STALE": "wxops.monitor.alerts",
    "MonitorResult": "wxops.monitor.run",
    "SeasonalBaseline": "wxops.monitor.drift",
    "compare_with_observed": "wxops.monitor.drift",
    "dashboard": "wxops.monitor.rules",
    "join_forecasts": "wxops.monitor.join",
    "ks_statistic": "wxops.monitor.drift",
    "monitor_once": "wxops.monitor.run",
    "promotion_scores": "wxops.monitor.join",
    "psi": "wxops.monitor.drift",
    "read_observations": "wxops.monitor.inputs",
    "read_prediction_log": "wxops.monitor.inputs",
    "render_alert_rules": "wxops.monitor.rules",
    "save_outputs": "wxops.monitor.run",
    "score_windows": "wxops.monitor.join",
    "write_rules": "wxops.monitor.rules",
    "write_status_page": "wxops.monitor.report",
}

__all__ = [
    "EXIT_DRIFT",
    "EXIT_ERROR",
    "EXIT_INCIDENT",
    "EXIT_OK",
    "EXIT_STALE",
    "Alert",
    "MonitorResult",
    "SeasonalBaseline",
    "compare_with_observed",
    "dashboard",
    "join_forecasts",
    "ks_statistic",
    "monitor_once",
    "promotion_scores",
    "psi",
    "read_observations",
    "read_prediction_log",
    "render_alert_rules",
    "save_outputs",
    "score_windows",
    "write_rules",
    "write_status_page",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
