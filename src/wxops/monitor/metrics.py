"""The monitor's Prometheus metrics: one registry, refreshed after every monitor run.

=============================================  ======================================
metric                                         labels
=============================================  ======================================
``wxops_monitor_live_score``                   score (latest scored window)
``wxops_monitor_promotion_score``              score (recorded at promotion)
``wxops_monitor_live_breach_windows``          score (consecutive windows beyond limit)
``wxops_monitor_drift_psi`` / ``_drift_ks``    feature, baseline (training|observed)
``wxops_monitor_drift_threshold``              feature, baseline (PSI alert level)
``wxops_monitor_drift_breach_windows``         feature, baseline
``wxops_monitor_observation_age_seconds``      (now - newest observation's valid time)
``wxops_monitor_input_age_seconds``            (now - newest served input's time)
``wxops_monitor_invalid_request_share``        (4xx share of prediction requests)
``wxops_monitor_joined_samples``               (pairs in the latest window)
``wxops_monitor_incident_open``                (1 while a live-score incident is open)
``wxops_monitor_status``                       (the exit code of the last run)
``wxops_monitor_last_run_timestamp_seconds``
``wxops_monitor_model_info``                   name, version (value 1)
=============================================  ======================================

A probability version's live scores are ``brier_<t>``, ``reliability_<t>`` and
``events_<t>`` per threshold ``t`` (e.g. ``score="reliability_1000"``).

Labels carry names only (scores, features, versions): never request values or tokens.
One-shot runs write the exposition text to ``metrics.prom`` (node_exporter's textfile
collector reads it); ``--watch`` serves it on ``/metrics``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server, write_to_textfile

if TYPE_CHECKING:
    from wxops.monitor.run import MonitorResult


class MonitorMetrics:
    """Gauges of the monitor in their own registry (cleared and refilled per run)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, list(labels), registry=self.registry)

        self.live = gauge("wxops_monitor_live_score", "Score of the latest scored window.", ("score",))
        self.promotion = gauge("wxops_monitor_promotion_score", "Score recorded at promotion.", ("score",))
        self.live_breach = gauge("wxops_monitor_live_breach_windows",
                                 "Consecutive windows the score was beyond its limit.", ("score",))
        self.psi = gauge("wxops_monitor_drift_psi", "PSI of served inputs vs baseline.",
                         ("feature", "baseline"))
        self.ks = gauge("wxops_monitor_drift_ks", "KS statistic of served inputs vs baseline.",
                        ("feature", "baseline"))
        self.threshold = gauge("wxops_monitor_drift_threshold", "PSI alert level.", ("feature", "baseline"))
        self.drift_breach = gauge("wxops_monitor_drift_breach_windows",
                                  "Consecutive windows of drift beyond the threshold.", ("feature", "baseline"))
        self.obs_age = gauge("wxops_monitor_observation_age_seconds", "Age of the newest observation.")
        self.input_age = gauge("wxops_monitor_input_age_seconds", "Age of the newest served input.")
        self.invalid = gauge("wxops_monitor_invalid_request_share", "Share of prediction requests "
                             "refused as invalid (4xx), from the service's /metrics.")
        self.joined = gauge("wxops_monitor_joined_samples", "Forecast/observation pairs in the latest window.")
        self.incident = gauge("wxops_monitor_incident_open", "1 while a live-score incident is open.")
        self.status = gauge("wxops_monitor_status", "Exit code of the last monitor run.")
        self.last_run = gauge("wxops_monitor_last_run_timestamp_seconds", "When the monitor last ran.")
        self.model = gauge("wxops_monitor_model_info", "Model version monitored (value 1).", ("name", "version"))
        self._labelled = [self.live, self.promotion, self.live_breach, self.psi, self.ks,
                          self.threshold, self.drift_breach, self.model]

    def update(self, result: MonitorResult) -> None:
        """Replace every value with those of ``result``."""
        for g in self._labelled:
            g.clear()
        for score, value in result.latest_scores.items():
            _set(self.live.labels(score), value)
        for score, value in result.promotion.items():
            if score in result.latest_scores:
                _set(self.promotion.labels(score), value)
        for score, count in result.live_breach_windows.items():
            self.live_breach.labels(score).set(count)
        for rec in result.drift_latest:
            labels = (rec["feature"], rec["baseline"])
            _set(self.psi.labels(*labels), rec["psi"])
            _set(self.ks.labels(*labels), rec["ks"])
            _set(self.threshold.labels(*labels), rec["threshold"])
        for (feature, baseline), count in result.drift_breach_windows.items():
            self.drift_breach.labels(feature, baseline).set(count)
        _set(self.obs_age, result.observation_age_s)
        _set(self.input_age, result.input_age_s)
        _set(self.invalid, result.invalid_share)
        self.joined.set(result.joined_latest)
        self.incident.set(1 if result.incident_open else 0)
        self.status.set(result.exit_code)
        self.last_run.set(time.time())
        self.model.labels(result.model, result.version).set(1)

    def write(self, path: Path) -> Path:
        """Write the exposition text (atomically) for a textfile collector."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry)
        return path

    def serve(self, port: int, host: str = "127.0.0.1") -> tuple[Any, int]:
        """Serve ``/metrics`` on ``host:port`` (0: a free port); returns (server, port)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server, int(server.server_address[1])


def _set(gauge: Any, value: float | None) -> None:
    if value is not None and math.isfinite(value):
        gauge.set(value)
