"""System metrics (MLflow's SystemMetricsMonitor, polled by the session's writer) per run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from wxops import tracking
from wxops.config import parse_config
from wxops.errors import ConfigError

CPU = "system/cpu_utilization_percentage"
MEMORY = "system/system_memory_usage_megabytes"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("system")


@pytest.fixture()
def experiment(store: Path) -> str:
    tracking.connect(f"sqlite:///{store / 'mlflow.db'}")  # one store (and schema set-up) per module
    return tracking.ensure_experiment("system", (store / "artifacts").as_uri())


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(i * i for i in range(1000))


def test_a_run_gets_cpu_and_memory_samples_at_the_interval(experiment: str) -> None:
    with tracking.start_run(experiment, "mlp", system_metrics=0.2) as run_id:
        log, flush = tracking.metrics_logger(run_id, interval=0.1)
        for step in range(5):
            _busy(0.15)
            log(step, {"train_loss": 1.0 / (step + 1)})
        flush()
    client = MlflowClient()
    cpu = client.get_metric_history(run_id, CPU)
    memory = client.get_metric_history(run_id, MEMORY)
    # ~0.75 s at 0.2 s: three or more samples (a loaded machine may delay the writer)
    assert len(cpu) >= 2, cpu
    assert [m.step for m in cpu] == list(range(len(cpu)))
    assert all(0 <= m.value <= 100 for m in cpu)
    assert len(memory) == len(cpu) and all(m.value > 0 for m in memory)
    assert len(client.get_metric_history(run_id, "train_loss")) == 5
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_run_shorter_than_the_interval_still_gets_one_sample(experiment: str) -> None:
    with tracking.start_run(experiment, "ridge", system_metrics=60.0) as run_id:
        _busy(0.05)
    assert [m.step for m in MlflowClient().get_metric_history(run_id, CPU)] == [0]


def test_a_failed_run_is_sampled_until_it_ends_and_no_longer(experiment: str) -> None:
    with pytest.raises(RuntimeError, match="diverged"), \
            tracking.start_run(experiment, "mlp", system_metrics=0.05) as run_id:
        _busy(0.2)
        raise RuntimeError("loss diverged")
    client = MlflowClient()
    taken = len(client.get_metric_history(run_id, CPU))
    assert taken >= 1 and client.get_run(run_id).info.status == "FAILED"
    time.sleep(0.3)
    with tracking.start_run(experiment, "next"):
        pass  # the outermost run's end drains the writer
    assert len(client.get_metric_history(run_id, CPU)) == taken


def test_system_metrics_are_off_unless_asked_for(experiment: str) -> None:
    with tracking.start_run(experiment, "pipeline") as run_id:
        _busy(0.05)
    metrics = MlflowClient().get_run(run_id).data.metrics
    assert not [k for k in metrics if k.startswith("system/")]


def test_nested_runs_are_sampled_by_the_one_writer_thread(experiment: str) -> None:
    before = {t.name for t in threading.enumerate()}
    with tracking.start_run(experiment, "pipeline") as parent:
        children = []
        for name in ("a", "b", "c"):
            with tracking.start_run(experiment, name, parent_run_id=parent,
                                    system_metrics=0.05) as child:
                on_epoch, flush = tracking.epoch_logger(child, interval=0.05)
                for epoch in range(3):
                    _busy(0.03)
                    on_epoch(epoch, 1.0, 2.0)
                    # one thread writes and samples, whatever the number of runs
                    names = [t.name for t in threading.enumerate() if t.name not in before]
                    assert names.count("wxops-tracking-writer") <= 1, names
                    assert not [n for n in names if "metrics" in n.lower()], names
                flush()
            children.append(child)
    client = MlflowClient()
    for child in children:
        assert client.get_metric_history(child, CPU), child
        assert [m.step for m in client.get_metric_history(child, "val_loss")] == [0, 1, 2]
    assert not client.get_run(parent).data.metrics


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan")])
def test_a_bad_interval_is_refused_before_the_run_starts(experiment: str, interval: float) -> None:
    with pytest.raises(ValueError, match="interval must be > 0 seconds"), \
            tracking.start_run(experiment, "x", system_metrics=interval):
        pass


@pytest.mark.parametrize(("value", "message"), [
    (0, "greater than 0"), (-2, "greater than 0"), (7200, "less than or equal to 3600"),
    ("often", "valid number"),
])
def test_a_bad_interval_in_the_config_says_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config({"tracking": {"system_metrics_interval": value}})
    assert "system_metrics_interval" in str(info.value)


def test_the_config_switch_and_interval_have_short_run_defaults() -> None:
    cfg = parse_config({})
    assert cfg.tracking.system_metrics is True
    assert cfg.tracking.system_metrics_interval == tracking.SYSTEM_METRICS_INTERVAL == 1.0
    off = parse_config({"tracking": {"system_metrics": False}})
    assert off.tracking.system_metrics is False
