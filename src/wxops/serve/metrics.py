"""Prometheus metrics of the service (``GET /metrics``).

=========================================  =========  ===================================
metric                                     type       labels
=========================================  =========  ===================================
``wxops_requests_total``                   counter    endpoint, method, status
``wxops_request_duration_seconds``         histogram  endpoint, status
``wxops_prediction_rows_total``            counter    endpoint
``wxops_predicted_value``                  histogram  (visibility in metres by default)
``wxops_model_info``                       gauge=1    name, version, run_id (info metric)
``wxops_model_reloads_total``              counter    outcome (swapped, unchanged, failed)
``wxops_model_reload_failing``             gauge      (1 while the last reload failed: the
                                                      old model serves, the registry moved)
``wxops_prediction_log_dropped_total``     counter    (queue full: entries not logged)
``wxops_prediction_log_written_total``     counter    (requests written to the log)
``wxops_predictions_total``                counter    where (inline: on the event loop, pool)
``wxops_predictions_rejected_total``       counter    (queue full: answered 503 + Retry-After)
``wxops_prediction_queue``                 gauge      (predictions waiting/running in the pool)
``wxops_worker_threads``                   gauge      library (torch, openmp, blas), pid
``wxops_thread_budget``                    gauge      quantity (cores, processes, threads), pid
=========================================  =========  ===================================

With several workers, ``PROMETHEUS_MULTIPROC_DIR`` is set by the supervisor and every
worker answers ``/metrics`` with the sum over all workers (prometheus-client's
multiprocess mode; the info metric then takes the max over live workers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prom_mp
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    5.0, 10.0)
#: Visibility thresholds that matter to aviation (m), up to the 100 km QC limit.
VALUE_BUCKETS = (200.0, 400.0, 800.0, 1500.0, 3000.0, 5000.0, 8000.0, 10_000.0, 16_000.0,
                 25_000.0, 50_000.0, 100_000.0)


class ValueHistogram(Collector):
    """A histogram filled a whole array at a time (the predicted values of one flush).

    In one process the buckets are NumPy counts, exposed through prometheus-client's
    public collector API (``HistogramMetricFamily``): a flush of 100-row requests costs
    about a microsecond per request, where one ``Histogram.observe`` per value costs
    ~2 microseconds per value. In multiprocess mode the values must reach the shared
    files: a plain ``Histogram`` holds them, and a flush adds each bucket's count and the
    sum to its shared values once: the log flush of a 100-row request fell from 232-304 us
    of a worker's CPU (one ``observe`` per value, about as much as answering it) to
    61-70 us. NaN values are not counted.
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...],
                 registry: CollectorRegistry | None) -> None:
        self._name, self._documentation = name, documentation
        self._bounds = np.asarray([*sorted(buckets), np.inf], dtype=np.float64)
        self._counts = np.zeros(len(self._bounds), dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()
        self._shared: Histogram | None = None
        #: The shared histogram's per-bucket values and sum, to add whole counts to; None
        #: where this prometheus-client keeps them differently (one observe per value).
        self._shared_values: tuple[list[Any], Any] | None = None
        if registry is None:  # multiprocess mode: the default registry writes the files
            self._shared = Histogram(name, documentation, buckets=buckets, registry=None)
            found, total = getattr(self._shared, "_buckets", None), getattr(self._shared, "_sum", None)
            if (isinstance(found, list) and len(found) == len(self._bounds)
                    and all(hasattr(b, "inc") for b in found) and hasattr(total, "inc")):
                self._shared_values = (found, total)
        else:
            registry.register(self)

    def observe_all(self, values: np.ndarray) -> None:
        """Count every value that is not NaN (a NaN would turn the sum NaN)."""
        finite = values[~np.isnan(values)]
        # a value equal to a bound belongs to that bucket (le), as in Histogram.observe
        counts = np.bincount(np.searchsorted(self._bounds, finite, side="left"),
                             minlength=len(self._bounds))
        if self._shared is not None:
            self._add_shared(counts, finite)
            return
        with self._lock:
            self._counts += counts
            self._sum += float(finite.sum())

    def _add_shared(self, counts: np.ndarray, finite: np.ndarray) -> None:
        """Add to the shared files: per bucket (prometheus-client keeps per-bucket, not
        cumulative, counts) and the sum, one write each."""
        shared = self._shared
        assert shared is not None
        if self._shared_values is None:
            for value in finite.tolist():
                shared.observe(value)
            return
        buckets, total = self._shared_values
        for bucket, count in zip(buckets, counts.tolist(), strict=True):
            if count:
                bucket.inc(count)
        if finite.size:
            total.inc(float(finite.sum()))

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self._name, self._documentation)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        family = HistogramMetricFamily(self._name, self._documentation)
        family.add_metric([], [(floatToGoString(b), float(c)) for b, c in
                               zip(self._bounds.tolist(), cumulative, strict=True)], total)
        yield family


class ServiceMetrics:
    """The service's metrics in their own registry (several apps can share a process)."""

    def __init__(self, value_buckets: tuple[float, ...] = VALUE_BUCKETS) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry
        self.requests = Counter("wxops_requests", "HTTP requests answered.",
                                ["endpoint", "method", "status"], registry=reg)
        self.latency = Histogram("wxops_request_duration_seconds",
                                 "Time from request start to response, by endpoint and status.",
                                 ["endpoint", "status"], buckets=_LATENCY_BUCKETS, registry=reg)
        self.rows = Counter("wxops_prediction_rows", "Rows predicted.", ["endpoint"],
                            registry=reg)
        self.values = ValueHistogram("wxops_predicted_value", "Distribution of predicted values.",
                                     value_buckets, reg)
        self.model_info = Gauge("wxops_model_info", "The model version served (value 1).",
                                ["name", "version", "run_id"], registry=reg,
                                multiprocess_mode="max")
        self.reloads = Counter("wxops_model_reloads", "Model reload attempts.", ["outcome"],
                               registry=reg)
        self.reload_failing = Gauge("wxops_model_reload_failing",
                                    "1 while the last model reload failed (the previous model "
                                    "keeps serving), else 0.", registry=reg,
                                    multiprocess_mode="max")
        self.log_dropped = Counter("wxops_prediction_log_dropped",
                                   "Prediction-log entries dropped because the queue was full.",
                                   registry=reg)
        self.log_written = Counter("wxops_prediction_log_written",
                                   "Requests written to the prediction log.", registry=reg)

        self.predictions = Counter("wxops_predictions",
                                   "Predictions by where they ran (inline or pool).", ["where"],
                                   registry=reg)
        self.rejected = Counter("wxops_predictions_rejected",
                                "Predictions refused with 503 because the queue was full.",
                                registry=reg)
        self.queue = Gauge("wxops_prediction_queue",
                           "Predictions waiting or running in the prediction pool.",
                           registry=reg, multiprocess_mode="livesum")
        self.threads = Gauge("wxops_worker_threads",
                             "Threads of each numerical library in this worker, read from it.",
                             ["library"], registry=reg, multiprocess_mode="liveall")
        self.budget = Gauge("wxops_thread_budget",
                            "The worker's thread budget: cores it may use, processes sharing "
                            "them, threads per process.", ["quantity"], registry=reg,
                            multiprocess_mode="liveall")

    def report_threads(self) -> None:
        """Set the thread gauges from the libraries themselves and the applied budget."""
        from wxops.startup import thread_settings

        for library, n in thread_settings().items():
            self.threads.labels(library).set(n)
        for quantity in ("cores", "processes", "threads"):
            value = os.environ.get(f"WXOPS_BUDGET_{quantity.upper()}")
            if value is not None:
                self.budget.labels(quantity).set(float(value))

    def set_model(self, old: tuple[str, str, str] | None, new: tuple[str, str, str]) -> None:
        """Point the info metric at ``new`` (name, version, run_id)."""
        if old is not None and old != new:
            self.model_info.labels(*old).set(0)
        self.model_info.labels(*new).set(1)

    def render(self) -> bytes:
        """The exposition text of every metric (all workers in multiprocess mode)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            prom_mp.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
