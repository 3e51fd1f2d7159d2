"""Pointing this process at a store does not redirect child processes or the user's setting."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

from wxops.tracking.session import point_at


def test_point_at_sets_this_process_and_puts_back_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://users-own-server:5000")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    point_at(uri)
    assert mlflow.get_tracking_uri() == uri
    assert mlflow.get_registry_uri() == uri
    # A `wxops serve --tracking-uri X` started from here must not inherit this registry.
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://users-own-server:5000"


def test_a_client_for_another_store_is_not_sent_to_the_last_registry(tmp_path: Path) -> None:
    first = f"sqlite:///{tmp_path / 'first.db'}"
    second = f"sqlite:///{tmp_path / 'second.db'}"
    point_at(first)
    mlflow.MlflowClient(first).create_registered_model("only-in-first")
    point_at(second)
    names = [m.name for m in mlflow.MlflowClient(second, registry_uri=second).search_registered_models()]
    assert names == []
    names = [m.name for m in mlflow.MlflowClient(first, registry_uri=first).search_registered_models()]
    assert names == ["only-in-first"]
