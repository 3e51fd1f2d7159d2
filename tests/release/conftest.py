"""A real project for the release tests: MLflow on SQLite in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wxops.config import WxopsConfig, parse_config


def small_config(models: list[dict[str, Any]], **extra: Any) -> WxopsConfig:
    """The reference use case with quick models and a lean bootstrap."""
    raw: dict[str, Any] = {"models": models,
                           "gate": {"bootstrap_samples": 200, **extra.pop("gate", {})}}
    raw.update(extra)
    return parse_config(raw)


GOOD = [{"name": "gbm-short", "type": "gradient_boosting", "max_iter": 10}]
GOOD_RETRAINED = [{"name": "gbm", "type": "gradient_boosting", "max_iter": 40}]
DEGRADED = [{"name": "mlp-one-epoch", "type": "mlp", "epochs": 1, "learning_rate": 1e-5,
             "hidden_dim": 4}]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh project folder whose store is its own SQLite file.

    ``mlflow.set_tracking_uri`` exports ``MLFLOW_TRACKING_URI``, which wxops then prefers
    over the project's store; cleared here so no earlier test's store is reused.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield tmp_path_factory.mktemp("release-project")


@pytest.fixture
def fresh_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No tracking URI inherited from an earlier test (see ``project``)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
