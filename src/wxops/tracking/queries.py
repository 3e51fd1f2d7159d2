"""Reads of runs: search, records, metric histories, artifacts.

Each read first waits for the session's queued writes, so it sees what was logged before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wxops.errors import TrackingError
from wxops.tracking import session


def run_exists(run_id: str) -> bool:
    """Whether ``run_id`` is still in the tracking store (and not deleted)."""
    from mlflow.exceptions import MlflowException

    try:
        return bool(session.client().get_run(run_id).info.lifecycle_stage == "active")
    except MlflowException:
        return False


def search_runs(experiment: str, filter_string: str, *, max_results: int = 50) -> list[dict[str, Any]]:
    """Runs of ``experiment`` matching an MLflow filter (the UI's search syntax)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = session.client()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise TrackingError(f"no experiment '{experiment}' at {mlflow.get_tracking_uri()}; run `wxops run` first")
    try:
        runs = client.search_runs(
            [exp.experiment_id], filter_string=filter_string, max_results=max_results,
            order_by=["attributes.start_time DESC"],
        )
    except MlflowException as exc:
        raise TrackingError(f"bad filter {filter_string!r}: {exc.message}") from exc
    return [
        {
            "run_id": r.info.run_id,
            "name": r.info.run_name,
            "status": r.info.status,
            "model": r.data.params.get("model", ""),
            "metrics": dict(r.data.metrics),
            "parent": r.data.tags.get("mlflow.parentRunId", ""),
        }
        for r in runs
    ]


def get_run_record(run_id: str) -> dict[str, Any]:
    """Params, tags and metrics of a run (empty dicts when the run is gone)."""
    from mlflow.exceptions import MlflowException

    try:
        run = session.client().get_run(run_id)
    except MlflowException:
        return {"params": {}, "tags": {}, "metrics": {}}
    return {"params": dict(run.data.params), "tags": dict(run.data.tags),
            "metrics": dict(run.data.metrics)}


def metric_histories(run_id: str, keys: tuple[str, ...] = ("train_loss", "val_loss")) -> list[
    dict[str, float | None]
]:
    """Per-step values of ``keys`` of a run, one dict per step (for loss curves)."""
    client = session.client()
    steps: dict[int, dict[str, float | None]] = {}
    for key in keys:
        for m in client.get_metric_history(run_id, key):
            steps.setdefault(int(m.step), dict.fromkeys(keys))[key] = float(m.value)
    return [steps[s] for s in sorted(steps)]


def read_run_json(run_id: str, artifact_file: str) -> dict[str, Any] | None:
    """A JSON artifact of a run (e.g. ``verification/verification.json``), None if absent."""
    import mlflow
    from mlflow.exceptions import MlflowException

    session.drain()
    try:
        payload = mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact_file}")
    except (MlflowException, OSError, ValueError):
        return None
    return dict(payload)


def download_run_folder(run_id: str, artifact_path: str, dst: Path) -> Path | None:
    """Download folder ``artifact_path`` of run ``run_id`` into ``dst``; None if absent."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = session.client()
    try:
        names = [f.path for f in client.list_artifacts(run_id, artifact_path)]
    except (MlflowException, OSError):
        return None
    if not names:
        return None
    try:
        return Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)))
    except (MlflowException, OSError) as exc:
        raise TrackingError(f"cannot download {artifact_path} of run {run_id}: {exc}") from exc
