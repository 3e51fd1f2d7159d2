"""Real registered models in a temporary MLflow SQLite store, and real servers on loopback.

The session fixture runs :func:`wxops.run_pipeline` (a ridge model only, ~5 s), so the
served model is the real wxops model type: a Pipeline of MeteoFeatures + estimator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.probability_version import PROBABILITY_MODEL
from wxops.config import parse_config
from wxops.pipeline import run_pipeline
from wxops.serve import RunningServer, ServeSettings, build_app, run_in_thread
from wxops.serve.server import configure_serving_process
from wxops.serve.settings import PredictionLogSettings

PREDICT_TOKEN = "predict-only-token-0123456789"
ADMIN_TOKEN = "admin-and-predict-token-abcdef"
SWAP_MODEL = "swapvis"


@dataclass(frozen=True)
class Registry:
    """A tracking store with model ``visibility`` (v1 champion) and ``swapvis`` (v1
    champion, v2 challenger: a stiffer ridge, so the two versions predict differently)."""

    uri: str
    project: Path
    run_id: str
    token_file: Path


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    configure_serving_process()
    project = tmp_path_factory.mktemp("serve-project")
    uri = f"sqlite:///{project / 'mlflow.db'}"

    def cfg(name: str, alpha: float, *extra: dict[str, object]) -> object:
        return parse_config({
            "seed": 7,
            "models": [{"name": f"ridge-{alpha:g}", "type": "linear", "alpha": alpha}, *extra],
            # the probability model is registered by test_probability alone, without
            # `wxops run`'s probability release cycle (minutes of CI for every serve test)
            "tracking": {"uri": uri, "registered_model": name, "probability_model": None},
        })

    # the probability configuration rides along (test_probability registers it)
    first = run_pipeline(cfg("visibility", 1.0, PROBABILITY_MODEL),  # type: ignore[arg-type]
                         project_dir=project)
    run_pipeline(cfg(SWAP_MODEL, 1.0), project_dir=project)  # type: ignore[arg-type]
    second = run_pipeline(cfg(SWAP_MODEL, 5000.0), project_dir=project)  # type: ignore[arg-type]
    assert (first.version, second.version) == ("1", "2")
    token_file = project / "tokens"
    token_file.write_text(f"# test tokens\npredict:{PREDICT_TOKEN}\npredict,admin:{ADMIN_TOKEN}\n")
    token_file.chmod(0o600)
    return Registry(uri=uri, project=project, run_id=first.run_id, token_file=token_file)


def example_frame(n: int = 5) -> pd.DataFrame:
    """Rows in the model's input format (naive-UTC time + raw predictors)."""
    base = pd.DataFrame({
        "time": pd.date_range("1988-01-01 06:00", periods=n, freq="h"),
        "t2m": [10.0 + i % 20 for i in range(n)],
        "td2m": [6.1 + 0.5 * (i % 8) for i in range(n)],
        "rh": [77.0 + i % 20 for i in range(n)],
        "pressure": [993.0] * n,
        "wind_speed": [6.2 - 0.01 * (i % 100) for i in range(n)],
        "wind_dir": [float((200 + 10 * i) % 360) for i in range(n)],
        "total_cloud": [float(i % 11) for i in range(n)],
        "opaque_cloud": [float(i % 6) for i in range(n)],
    })
    return base


def wait_ready(url: str, timeout: float = 60.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = requests.get(f"{url}/ready", timeout=5)
        if resp.status_code == 200:
            return dict(resp.json())
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready: {resp.text}")


@contextmanager
def ready_process(proc: subprocess.Popen[str], url: str, *, within: float) -> Iterator[str]:
    """Wait until the ``wxops serve`` process ``proc`` answers ``/ready``; SIGTERM it on exit."""
    try:
        deadline = time.monotonic() + within
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                wait_ready(url, timeout=0.5)
                break
            except (requests.ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_server(registry: Registry, **overrides: object) -> RunningServer:
    """A real uvicorn server on a free loopback port, in a thread, model loaded."""
    params: dict[str, object] = {
        "tracking_uri": registry.uri, "port": 0, "poll_seconds": 0,
        "token_file": registry.token_file,
    }
    params.update(overrides)
    settings = ServeSettings.model_validate(params)
    server = run_in_thread(build_app(settings))
    wait_ready(server.url)
    return server


@pytest.fixture(scope="session")
def predlog_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("predlog") / "predictions.db"


@pytest.fixture(scope="session")
def server(registry: Registry, predlog_path: Path) -> Iterator[RunningServer]:
    """The champion of ``visibility`` with auth on and a SQLite prediction log."""
    srv = start_server(registry, max_body_bytes=64 * 1024,
                       prediction_log=PredictionLogSettings(path=predlog_path,
                                                            flush_seconds=0.2))
    yield srv
    srv.stop()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {PREDICT_TOKEN}"}


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(autouse=True)
def _serving_process_store(registry: Registry) -> None:
    """The servers here run in this process's threads, and a serving process points MLflow
    at its store once, at start: each test starts pointed at the registry (the tests
    before it may have pointed elsewhere; tests/conftest.py puts MLflow back after each)."""
    from wxops.tracking.session import point_at

    point_at(registry.uri)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loopback traffic must never go through a proxy configured in the environment.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
