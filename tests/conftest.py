"""Shared fixtures: tiny in-memory tables and a small, fast pipeline configuration."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from wxops.config import WxopsConfig, parse_config
from wxops.startup import configure_process

configure_process()

#: MLflow exports the URI given to ``mlflow.set_tracking_uri`` into the environment, and
#: wxops prefers ``MLFLOW_TRACKING_URI`` over a project's own store: one test pointing
#: MLflow at a server it then stops would send every later test to that dead server.
_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_USERNAME",
               "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


_GLOBALS = (("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
            ("mlflow.tracking._model_registry.utils", "_registry_uri"))


def _mlflow_target() -> dict[str, str | None]:
    saved = {key: os.environ.get(key) for key in _MLFLOW_ENV}
    for module, name in _GLOBALS:
        saved[f"{module}.{name}"] = getattr(sys.modules.get(module), name, None)
    return saved


def _restore_mlflow_target(saved: dict[str, str | None], *, globals_too: bool) -> None:
    """Put the environment back; MLflow's URI globals (which win over the environment) go
    back to what they were (``globals_too``) or are cleared, so the environment decides."""
    for key in _MLFLOW_ENV:
        value = saved[key]
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for module, name in _GLOBALS:
        loaded = sys.modules.get(module)
        if loaded is not None:
            setattr(loaded, name, saved[f"{module}.{name}"] if globals_too else None)


@pytest.fixture(autouse=True, scope="module")
def _mlflow_isolation_module() -> Iterator[None]:
    """A module's fixtures may point MLflow elsewhere for its tests, not for the next module:
    at its end the globals are cleared (a session fixture first used here would otherwise
    leave its registry to every later module)."""
    saved = _mlflow_target()
    yield
    _restore_mlflow_target(saved, globals_too=False)


@pytest.fixture(autouse=True)
def _mlflow_isolation() -> Iterator[None]:
    """Each test starts with the MLflow target (environment and globals) that its module's
    fixtures set, and leaves it so for the next."""
    saved = _mlflow_target()
    yield
    _restore_mlflow_target(saved, globals_too=True)


def make_obs(n_days: int = 90, *, seed: int = 0, start: str = "2021-01-01") -> pd.DataFrame:
    """Hourly synthetic station observations with physically consistent values."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=24 * n_days, freq="h", tz="UTC")
    hour = time.hour.to_numpy()
    t2m = 10 + 8 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 1.5, len(time))
    depression = np.abs(rng.normal(4, 3, len(time)))
    td2m = t2m - depression
    vis = np.clip(2000 * depression + rng.normal(0, 1500, len(time)), 50, 30000)
    return pd.DataFrame({
        "time": time,
        "t2m": t2m,
        "td2m": td2m,
        "rh": 100 * np.exp(17.625 * td2m / (243.04 + td2m) - 17.625 * t2m / (243.04 + t2m)),
        "pressure": 1000 + rng.normal(0, 5, len(time)),
        "wind_speed": np.abs(rng.normal(3, 2, len(time))),
        "wind_dir": rng.uniform(0, 360, len(time)),
        "total_cloud": rng.integers(0, 11, len(time)).astype(float),
        "opaque_cloud": rng.integers(0, 6, len(time)).astype(float),
        "visibility": vis,
    })


@pytest.fixture
def obs() -> pd.DataFrame:
    return make_obs()


SMALL_MODELS: list[dict[str, Any]] = [
    {"name": "mlp", "type": "mlp", "hidden_dim": 8, "epochs": 3, "batch_size": 256},
    {"name": "gbm", "type": "gradient_boosting", "max_iter": 10},
    {"name": "ridge", "type": "linear"},
]


def small_config_dict(**overrides: Any) -> dict[str, Any]:
    """The reference use case with small, fast models."""
    raw: dict[str, Any] = {"seed": 7, "models": [dict(m) for m in SMALL_MODELS]}
    raw.update(overrides)
    return raw


def write_config(folder: Path, raw: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wxops.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def small_config() -> WxopsConfig:
    return parse_config(small_config_dict())


#: Files that take a minute or more, longest first (CI's --durations on 2 cores): two
#: workers (pytest-xdist, whole files each) then finish together instead of one waiting
#: alone on a long journey at the end (the shortest files fill the last minutes).
_LONG_FIRST = ("tests/server/test_team_outage.py", "tests/deploy/test_generated_stack.py",
               "tests/release/test_release_cycle.py", "tests/server/test_team_journey.py",
               "tests/server/test_offline_sync.py", "tests/integration/test_notify_journey.py",
               "tests/integration/test_remote_data.py", "tests/deploy/test_jenkinsfile.py",
               "tests/integration/test_nwp_cycle.py", "tests/integration/test_dask.py",
               "tests/integration/test_breaking_and_damaged.py",
               "tests/integration/test_slurm.py", "tests/release/test_probability_versions.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(_LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order
