"""System metrics of a run (CPU, memory, disk, network; GPU where NVML finds one).

MLflow's ``SystemMetricsMonitor`` measures; the session's writer thread polls it every
``interval`` seconds and logs the points as ``system/...`` metrics of the run, which the
UI charts under "System metrics". MLflow's default interval (10 s) misses a run of a few
seconds, the usual length of a configuration run here; a last sample when the run ends
covers the time since the previous one, so even a short run gets one point.
GPU metrics need ``nvidia-ml-py`` (``pynvml``) installed.
"""

from __future__ import annotations

from typing import Any

from wxops.tracking import internals

#: Seconds between samples when the configuration does not say.
DEFAULT_INTERVAL = 1.0


def check_interval(interval: float) -> float:
    """``interval`` if it is a positive number of seconds, else ValueError."""
    if not interval > 0:
        raise ValueError(f"system metrics interval must be > 0 seconds, got {interval}")
    return float(interval)


class SystemSampler:
    """Samples of one run, taken on the writer thread (see :class:`wxops.tracking.writer.Sampler`)."""

    def __init__(self, run_id: str, interval: float = DEFAULT_INTERVAL) -> None:
        self.run_id = run_id
        self.interval = check_interval(interval)
        self._monitor: Any = None
        self._points: list[Any] = []
        self._samples = 0

    def start(self) -> None:
        """Build the monitor and open the first CPU window (``cpu_percent`` measures the
        time since its previous call: without this the first sample reads 0 %)."""
        import psutil

        self._monitor = internals.system_metrics_monitor(self.run_id, self.interval, self._record)
        self.interval = float(self._monitor.sampling_interval)  # MLflow's env variable wins
        psutil.cpu_percent()

    def sample(self) -> list[Any]:
        if self._monitor is None:
            self.start()
        self._monitor.collect_metrics()
        self._samples += 1
        if self._samples >= int(self._monitor.samples_before_logging):
            self._publish()
        return self._take()

    def final(self) -> list[Any]:
        if self._monitor is None:
            self.start()
        self._monitor.collect_metrics()
        self._publish()
        return self._take()

    def _publish(self) -> None:
        self._monitor.publish_metrics(self._monitor.aggregate_metrics())
        self._samples = 0

    def _record(self, metrics: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._points += [Metric(k, float(v), now, step) for k, v in metrics.items()]

    def _take(self) -> list[Any]:
        points, self._points = self._points, []
        return points
