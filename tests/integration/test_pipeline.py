"""End to end: the reference data through every stage into a real MLflow SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from tests.conftest import SMALL_MODELS, small_config_dict
from wxops import ModelConfigError, parse_config, run_pipeline
from wxops.pipeline import PipelineResult


def _client(result: PipelineResult) -> MlflowClient:
    from wxops.tracking import connect

    connect(result.tracking_uri)
    return MlflowClient(result.tracking_uri, registry_uri=result.tracking_uri)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PipelineResult]:
    folder = tmp_path_factory.mktemp("project")
    result = run_pipeline(parse_config(small_config_dict()), project_dir=folder)
    return folder, result


def test_run_tracks_everything(project: tuple[Path, PipelineResult]) -> None:
    folder, result = project
    client = _client(result)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["seed"] == "7"
    assert parent.data.tags["wxops.git_commit"]  # "None" outside a git work tree
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert sorted(r.info.run_name for r in children) == sorted(m["name"] for m in SMALL_MODELS)
    mlp = next(r for r in children if r.info.run_name == "mlp")
    assert mlp.info.status == "FINISHED"
    assert {"hidden_dim", "learning_rate", "batch_size", "epochs", "seed", "device_used"} <= set(
        mlp.data.params)
    # the configuration says device: auto (the GPU where there is one)
    assert mlp.data.params["device_used"] == ("cuda" if torch.cuda.is_available() else "cpu")
    train_loss = client.get_metric_history(mlp.info.run_id, "train_loss")
    val_loss = client.get_metric_history(mlp.info.run_id, "val_loss")
    assert [m.step for m in train_loss] == [0, 1, 2] == [m.step for m in val_loss]
    assert {"val_rmse", "val_mae", "train_rmse"} <= set(mlp.data.metrics)
    # Lineage: datasets as MLflow inputs and lineage.json as an artifact.
    inputs = {d.dataset.name for d in parent.inputs.dataset_inputs}
    assert {"observations", "train", "validation"} <= inputs
    lineage = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path="lineage.json")).read_text())
    assert lineage["source"]["rows"] == 8760 and len(lineage["source"]["sha256"]) == 64
    assert {"git", "packages", "seed", "config_hash", "qc", "stages"} <= set(lineage)
    assert lineage["stages"]["split"]["blocks"]["1980-12"] == "test"
    # The artifacts land in the project's local folder, beside the SQLite store.
    assert (folder / "mlflow.db").is_file() and (folder / "mlartifacts").is_dir()
    assert (folder / "wxops-out" / "loss_curves.png").stat().st_size > 10_000
    metrics = json.loads((folder / "wxops-out" / "metrics.json").read_text())
    assert metrics["best"] == result.best
    # Per configuration: the hyperparameters and the per-epoch losses MLflow holds.
    mlp_detail = metrics["details"]["mlp"]
    assert mlp_detail["hyperparameters"]["hidden_dim"] == int(mlp.data.params["hidden_dim"])
    assert [p["epoch"] for p in mlp_detail["losses"]] == [0, 1, 2]
    assert [p["train_loss"] for p in mlp_detail["losses"]] == pytest.approx([m.value for m in train_loss])
    assert [p["val_loss"] for p in mlp_detail["losses"]] == pytest.approx([m.value for m in val_loss])
    assert set(metrics["details"]) == {m["name"] for m in SMALL_MODELS}
    logged = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path="metrics.json")).read_text())
    assert logged == metrics


def test_best_version_registered_as_champion(project: tuple[Path, PipelineResult]) -> None:
    _, result = project
    client = _client(result)
    version = client.get_model_version_by_alias("visibility", "champion")
    assert str(version.version) == result.version == "1" and result.became_champion
    assert {"data_sha256", "config_hash", "git_commit"} <= set(version.tags)
    assert version.tags["config_name"] == result.best
    best_rmse = min(m["val_rmse"] for m in result.metrics.values())
    assert result.metrics[result.best]["val_rmse"] == best_rmse
    model = mlflow.pyfunc.load_model("models:/visibility@champion")
    assert model.metadata.signature is not None
    assert "time" in model.metadata.signature.inputs.input_names()


def test_cached_rerun_skips_every_stage(project: tuple[Path, PipelineResult]) -> None:
    folder, first = project
    client = _client(first)
    before = len(client.search_runs([client.get_experiment_by_name("visibility").experiment_id]))
    again = run_pipeline(parse_config(small_config_dict()), project_dir=folder)
    assert again.fully_cached and again.run_id == first.run_id
    after = len(client.search_runs([client.get_experiment_by_name("visibility").experiment_id]))
    assert after == before


def test_changing_one_config_retrains_only_it(project: tuple[Path, PipelineResult]) -> None:
    folder, first = project
    raw = small_config_dict()
    raw["models"][1]["max_iter"] = 12  # gbm changes; mlp and ridge do not
    result = run_pipeline(parse_config(raw), project_dir=folder)
    assert not result.fully_cached
    assert {"ingest", "features", "split"} <= set(result.cached_stages)
    client = _client(result)
    children = client.search_runs(
        [client.get_experiment_by_name("visibility").experiment_id],
        f"tags.mlflow.parentRunId = '{result.run_id}'")
    reused = {r.info.run_name for r in children if "wxops.reused_from_run" in r.data.tags}
    assert reused == {"mlp", "ridge"}
    mlp = next(r for r in children if r.info.run_name == "mlp")
    assert len(client.get_metric_history(mlp.info.run_id, "train_loss")) == 3
    assert result.metrics["mlp"] == first.metrics["mlp"]


def test_same_config_same_metrics(project: tuple[Path, PipelineResult], tmp_path: Path) -> None:
    _, first = project
    again = run_pipeline(parse_config(small_config_dict()), project_dir=tmp_path, use_cache=False)
    assert again.metrics == first.metrics


def test_env_tracking_uri_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "elsewhere" / "team.db"
    store.parent.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    raw = small_config_dict(models=[{"name": "ridge", "type": "linear"}])
    result = run_pipeline(parse_config(raw), project_dir=tmp_path / "proj")
    assert result.tracking_uri == f"sqlite:///{store}" and store.is_file()
    assert not (tmp_path / "proj" / "mlflow.db").exists()


def test_failure_marks_runs_failed_and_registers_nothing(tmp_path: Path) -> None:
    raw = small_config_dict(models=[
        {"name": "ridge", "type": "linear"},
        {"name": "gpu-only", "type": "mlp", "epochs": 1, "device": "cuda"},
    ])
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to fail")
    with pytest.raises(ModelConfigError, match="CUDA is not available"):
        run_pipeline(parse_config(raw), project_dir=tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("visibility").experiment_id])
    statuses = {r.info.run_name: r.info.status for r in runs}
    assert statuses == {"pipeline": "FAILED", "ridge": "FINISHED", "gpu-only": "FAILED"}
    assert client.search_model_versions("name = 'visibility'") == []
