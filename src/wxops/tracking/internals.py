"""Every MLflow call wxops makes outside MLflow's documented API, in one place.

Each is small and has a test in ``tests/tracking/test_internals.py`` that fails with a
clear message when an MLflow release changes it, so an upgrade breaks a test, not a
user's run. Keep new private calls here, with a test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def context_tags() -> dict[str, str]:
    """The tags MLflow's fluent ``start_run`` adds (user, source, git commit, ...).

    ``mlflow.tracking.context.registry.resolve_tags`` is not public; wxops creates runs
    with the client (to move them to the outbox mid-run) and still wants these tags.
    """
    from mlflow.tracking.context.registry import resolve_tags

    return {k: str(v) for k, v in resolve_tags({}).items()}


def dataset_entity(dataset: Any) -> Any:
    """The ``mlflow.entities.Dataset`` of an ``mlflow.data`` dataset, for
    ``MlflowClient.log_inputs`` (the fluent ``log_input`` calls the same private method)."""
    return dataset._to_mlflow_entity()


def logged_model_id(model_uri: str) -> str | None:
    """The logged model id of a ``models:/m-...`` URI (None for other URIs)."""
    from mlflow.store.artifact.utils.models import _parse_model_uri, is_models_uri

    if not is_models_uri(model_uri):
        return None
    return _parse_model_uri(model_uri).model_id


def system_metrics_monitor(run_id: str, interval: float,
                           record: Callable[[dict[str, float], int], None]) -> Any:
    """MLflow's ``SystemMetricsMonitor`` for ``run_id``, publishing through ``record``.

    wxops polls it on its own writer thread instead of calling ``start()`` (which runs a
    thread per run that reads the run's status and writes on each sample, around the
    outbox switch). ``publish_metrics`` prefixes ``system/``, counts steps and clears the
    samples, then hands the points to ``mlflow_logger.record_metrics(metrics, step)``:
    that attribute is swapped for ``record``.
    """
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    class _Record:
        def record_metrics(self, metrics: dict[str, float], step: int) -> None:
            record(metrics, step)

        def flush(self) -> None:
            """Nothing buffered here: ``record`` owns the points."""

    monitor = SystemMetricsMonitor(run_id, sampling_interval=interval, samples_before_logging=1)
    monitor.mlflow_logger = _Record()  # type: ignore[assignment]
    return monitor
