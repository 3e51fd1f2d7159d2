"""Monitoring in operations: live verification, drift, alerts, corrective action.

``wxops monitor`` joins the service's prediction log with observations as they arrive,
scores rolling windows with the verification scores, compares them with the scores
recorded at promotion, checks input drift and data age, publishes Prometheus metrics,
alert rules, a Grafana dashboard and an HTML status page, and exits with a code a
scheduler can act on (:mod:`wxops.monitor.alerts`).
"""

from wxops.monitor.alerts import EXIT_DRIFT, EXIT_ERROR, EXIT_INCIDENT, EXIT_OK, EXIT_STALE, Alert
from wxops.monitor.drift import SeasonalBaseline, compare_with_observed, ks_statistic, psi
from wxops.monitor.inputs import read_observations, read_prediction_log
from wxops.monitor.join import join_forecasts, promotion_scores, score_windows
from wxops.monitor.report import write_status_page
from wxops.monitor.rules import dashboard, render_alert_rules, write_rules
from wxops.monitor.run import MonitorResult, monitor_once, save_outputs

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
