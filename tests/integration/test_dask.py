"""The pipeline on real Dask clusters: a local cluster, an external scheduler, a lost worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.conftest import small_config_dict
from wxops import parse_config, run_pipeline
from wxops.data.synthetic import generate
from wxops.errors import ExecutorError
from wxops.pipeline import PipelineResult

pytestmark = pytest.mark.slow

NWP_MODELS: list[dict[str, Any]] = [
    {"name": "mlp", "type": "mlp", "hidden_dim": 8, "epochs": 2, "batch_size": 512},
    {"name": "gbm", "type": "gradient_boosting", "max_iter": 10},
    {"name": "ridge", "type": "linear"},
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(result: PipelineResult) -> list[Any]:
    from wxops.tracking import connect

    connect(result.tracking_uri)
    client = MlflowClient(result.tracking_uri)
    parent = client.get_run(result.run_id)
    return client.search_runs([parent.info.experiment_id],
                              f"tags.mlflow.parentRunId = '{result.run_id}'")


def _nwp_config(folder: Path, executor: str, models: list[dict[str, Any]] | None = None) -> Any:
    raw = {
        "seed": 3,
        "data": {"nwp": {"paths": "nwp/*.nc", "variables": ["t2m", "d2m", "si10"],
                         "columns": {"d2m": "td2m", "si10": "wind_speed"},
                         "interpolation": "bilinear", "height_correction": True, "chunk_stations": 1},
                 "obs": {"path": "obs.parquet"}, "stations": "stations.csv"},
        "features": {"target": "t2m", "predictors": ["t2m", "td2m", "wind_speed"],
                     "derived": ["dewpoint_depression", "cyclic_time"]},
        "models": models or NWP_MODELS,
        "tracking": {"experiment": "nwp", "registered_model": "nwp"},
        "verify": {"thresholds": [0.0]},
        "gate": {"rules": [{"score": "rmse", "against": "climatology", "min_skill": 0.0}]},
        "execution": {"executor": executor, "workers": 2},
    }
    return parse_config(raw, base_dir=folder)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    generate(folder, stations=2, years=1, seed=1)
    return folder


def _project(archive: Path, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(archive, folder)
    return folder


@pytest.fixture
def external_cluster() -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A real ``dask scheduler`` and two ``dask worker`` processes on loopback."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    bindir = Path(sys.executable).parent
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs: list[subprocess.Popen[bytes]] = [subprocess.Popen(
        [str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--dashboard-address", ":0", "--no-show"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)]
    for k in range(2):
        procs.append(subprocess.Popen(
            [str(bindir / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
             "--name", f"w{k}", "--host", "127.0.0.1", "--no-dashboard", "--no-nanny"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env))
    try:
        from distributed import Client

        with Client(address, timeout="60s", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield address, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_dask_is_not_left_as_the_default_scheduler() -> None:
    import dask

    from wxops.config import ExecutionConfig
    from wxops.execution import open_executor

    with open_executor(ExecutionConfig(executor="dask", workers=1)) as executor:
        assert executor.map(abs, [-2]) == [2]
        assert dask.config.get("scheduler", None) != "dask.distributed"
    assert dask.config.get("scheduler", None) != "dask.distributed"


def test_reference_example_same_metrics_on_a_local_dask_cluster(tmp_path: Path) -> None:
    local = run_pipeline(parse_config(small_config_dict()), project_dir=tmp_path / "local")
    cfg = parse_config(small_config_dict(execution={"executor": "dask", "workers": 2}))
    dask = run_pipeline(cfg, project_dir=tmp_path / "dask")
    assert dask.best == local.best
    for name, metrics in local.metrics.items():
        assert dask.metrics[name] == pytest.approx(metrics, rel=1e-6), name
    runs = _children(dask)
    assert sorted(r.info.run_name for r in runs) == sorted(local.metrics)
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(r.data.params["seed"] == "7" for r in runs)


def test_nwp_pipeline_on_external_scheduler_equals_local(
    archive: Path, tmp_path: Path, external_cluster: tuple[str, list[Any]]
) -> None:
    address, _ = external_cluster
    local_dir, remote_dir = _project(archive, tmp_path, "local"), _project(archive, tmp_path, "remote")
    local = run_pipeline(_nwp_config(local_dir, "local"), project_dir=local_dir)
    remote = run_pipeline(_nwp_config(remote_dir, address), project_dir=remote_dir)
    for name, metrics in local.metrics.items():
        assert remote.metrics[name] == pytest.approx(metrics, rel=1e-6), name
    runs = _children(remote)
    assert sorted(r.info.run_name for r in runs) == sorted(m["name"] for m in NWP_MODELS)
    assert all(r.info.status == "FINISHED" for r in runs)
    # Preprocessing ran as one task per station chunk: two partitions for two stations.
    parts = list((remote_dir / ".wxops" / "nwp").rglob("part-*.parquet"))
    assert len(parts) == 2
    assert remote.version == "1" and remote.gate_passed is not None, remote.release_message


def test_killed_worker_mid_training(
    archive: Path, tmp_path: Path, external_cluster: tuple[str, list[Any]]
) -> None:
    from distributed import Client

    address, procs = external_cluster
    folder = _project(archive, tmp_path, "kill")
    slow = [{"name": f"mlp{k}", "type": "mlp", "hidden_dim": 64, "epochs": 40, "batch_size": 64}
            for k in range(2)]
    cfg = _nwp_config(folder, address, slow)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = run_pipeline(cfg, project_dir=folder)
        except ExecutorError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    with Client(address, timeout="30s", set_as_default=False) as client:
        deadline = time.monotonic() + 180
        while killed is None and time.monotonic() < deadline and thread.is_alive():
            busy = [w for w, keys in client.processing().items()
                    if any("run_train_task" in str(k) for k in keys)]
            if busy:
                name = client.scheduler_info()["workers"][busy[0]]["name"]
                proc = procs[1 + int(str(name)[1:])]
                time.sleep(2.0)  # well into the epochs
                os.killpg(proc.pid, signal.SIGKILL)
                killed = name
            time.sleep(0.2)
    thread.join(timeout=400)
    assert killed is not None, "no training task was seen running"
    assert not thread.is_alive()
    if "result" in outcome:  # the task was retried on the surviving worker
        result: PipelineResult = outcome["result"]
        runs = _children(result)
        finished = [r for r in runs if r.info.status == "FINISHED"]
        assert sorted(r.info.run_name for r in finished) == ["mlp0", "mlp1"]
        assert all(r.info.status in ("FINISHED", "FAILED") for r in runs)  # no orphan left RUNNING
        assert result.version == "1"
    else:  # a clear error, and nothing registered
        assert "Dask" in str(outcome["error"])
        client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
        assert client.search_model_versions("name = 'nwp'") == []
