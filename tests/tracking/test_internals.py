"""Pins every MLflow call wxops makes outside MLflow's public API (wxops.tracking.internals).

When an MLflow release changes one of them, the test names it and what changed, so the
upgrade breaks here and not in a user's run.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import pytest

from wxops.tracking import internals

FIX = "MLflow changed a private call wxops relies on: update wxops/tracking/internals.py"


def test_resolve_tags_gives_the_context_tags_of_a_fluent_run() -> None:
    from mlflow.tracking.context import registry

    assert list(inspect.signature(registry.resolve_tags).parameters) == ["tags", "ignore"], FIX
    tags = internals.context_tags()
    assert {"mlflow.user", "mlflow.source.name", "mlflow.source.type"} <= set(tags), (FIX, tags)
    assert all(isinstance(v, str) for v in tags.values())
    # caller's tags win over the context's, as wxops' run creation assumes
    assert registry.resolve_tags({"mlflow.user": "x"})["mlflow.user"] == "x", FIX


def test_a_pandas_dataset_converts_to_the_entity_log_inputs_takes() -> None:
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import Dataset

    frame = pd.DataFrame({"t2m": [1.0, 2.0], "visibility": [100.0, 200.0]})
    dataset = from_pandas(frame, source="obs.csv", name="train", targets="visibility",
                          digest="abc123")
    assert hasattr(dataset, "_to_mlflow_entity"), FIX
    entity = internals.dataset_entity(dataset)
    assert isinstance(entity, Dataset), FIX
    assert (entity.name, entity.digest) == ("train", "abc123"), FIX
    assert "visibility" in entity.profile or "visibility" in entity.schema, FIX


@pytest.mark.parametrize(("uri", "expected"), [
    ("models:/m-0123456789abcdef", "m-0123456789abcdef"),
    ("models:/visibility/3", None),
    ("models:/visibility@champion", None),
    ("runs:/abc/model", None),
    ("file:///tmp/model", None),
])
def test_logged_model_ids_are_parsed_from_model_uris(uri: str, expected: str | None) -> None:
    assert internals.logged_model_id(uri) == expected, FIX


def test_system_metrics_monitor_publishes_through_its_logger_attribute() -> None:
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    from mlflow.utils.autologging_utils import BatchMetricsLogger

    params = inspect.signature(SystemMetricsMonitor).parameters
    assert {"run_id", "sampling_interval", "samples_before_logging"} <= set(params), FIX
    plain = SystemMetricsMonitor("0" * 32, sampling_interval=0.5, samples_before_logging=1)
    assert isinstance(plain.mlflow_logger, BatchMetricsLogger), FIX  # the attribute wxops swaps
    assert (plain.sampling_interval, plain.samples_before_logging) == (0.5, 1), FIX

    got: list[tuple[dict[str, float], int]] = []
    monitor = internals.system_metrics_monitor("0" * 32, 0.5, lambda m, step: got.append((m, step)))
    for _ in range(2):
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
    assert [step for _, step in got] == [0, 1], FIX
    for metrics, _ in got:
        assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
                "system/system_memory_usage_percentage"} <= set(metrics), (FIX, metrics)
        assert 0 <= metrics["system/cpu_utilization_percentage"] <= 100
        assert metrics["system/system_memory_usage_megabytes"] > 0
    # publishing clears the samples: an aggregate without a new sample is empty
    assert monitor.aggregate_metrics() == {}, FIX


def test_no_other_private_mlflow_name_is_used_by_tracking() -> None:
    """A private MLflow name (``_x``) used outside internals.py would escape these pins."""
    import re

    package = Path(internals.__file__).parent
    private = re.compile(r"(?:from mlflow[\w.]* import [^\n]*\b_\w+|mlflow[\w.]*\._\w+|\._to_mlflow)")
    offenders = {p.name: private.findall(p.read_text()) for p in package.glob("*.py")
                 if p.name != "internals.py"}
    assert not {k: v for k, v in offenders.items() if v}, offenders
