"""Training one configuration as a self-contained task (local or on a Dask worker).

The task carries paths to the train/validation tables and the tracking coordinates
(URI, experiment, parent run id), never data frames or an MLflow client: a worker
process opens the same store and logs a run nested under the pipeline run (MLflow tags
it ``mlflow.parentRunId``). Seeds are set inside the task, so where it runs does not
change the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from wxops.config import ModelConfig
    from wxops.models.mlp import EpochCallback
    from wxops.models.train import TrainResult


@dataclass(frozen=True)
class TrainTask:
    """One configuration to train, with where its data lies and where to log."""

    model: ModelConfig
    inputs: list[str]
    target: str
    lead_time: int | None
    train_path: str
    validation_path: str
    derived: list[str]
    seed: int
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    pip_requirements: list[str]
    code_paths: list[str]
    tags: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    """Values to redact (``tracking.secrets``): a worker process must redact them too."""
    system_metrics: float | None = None
    """Seconds between system-metrics samples of the run (``tracking.system_metrics``); None: off."""


@dataclass
class TaskOutcome:
    """The trained configuration and where its run and model were logged."""

    result: TrainResult
    run_id: str
    model_uri: str


def load_split_tables(task: TrainTask) -> tuple[pd.DataFrame, pd.DataFrame]:
    import pandas as pd

    return pd.read_parquet(task.train_path), pd.read_parquet(task.validation_path)


def run_train_task(task: TrainTask, on_epoch: EpochCallback | None = None) -> TaskOutcome:
    """Train ``task.model`` in a nested run of ``task.parent_run_id`` and log the model."""
    from wxops import tracking
    from wxops.features import FeatureTable
    from wxops.models.train import train_model
    from wxops.split import Split

    train, validation = load_split_tables(task)
    table = FeatureTable(train, list(task.inputs), task.target, task.lead_time)
    split = Split(train, validation, validation.iloc[0:0], {})
    tracking.connect(task.tracking_uri, secrets=task.secrets)
    # the writer creates the run while the model trains (log_model below waits for it)
    with tracking.open_run(task.experiment_id, task.model.name, parent_run_id=task.parent_run_id,
                           tags={**task.tags, **where_it_runs()},
                           system_metrics=task.system_metrics) as run:
        log_epoch, flush = tracking.epoch_logger(run)
        log_scores, _ = tracking.metrics_logger(run)
        per_epoch: dict[str, int] = {}  # metric logged per epoch -> its last step

        def both(epoch: int, train_loss: float, val_loss: float | None) -> None:
            log_epoch(epoch, train_loss, val_loss)
            if on_epoch is not None:
                on_epoch(epoch, train_loss, val_loss)

        def scores(epoch: int, values: dict[str, float]) -> None:
            log_scores(epoch, values)
            per_epoch.update(dict.fromkeys(values, epoch))

        try:
            result = train_model(task.model, table, split, derived=list(task.derived),
                                 seed=task.seed, on_epoch=both, on_scores=scores)
        finally:
            flush()
        tracking.log_params(result.params)
        # a final metric also logged per epoch (val_brier_1000) goes at the last epoch's
        # step, so its chart does not jump back to step 0
        tracking.log_metrics({k: v for k, v in result.metrics.items() if k not in per_epoch})
        last = {k: v for k, v in result.metrics.items() if k in per_epoch}
        if last:
            tracking.log_metrics(last, step=max(per_epoch[k] for k in last))
        model_uri = tracking.log_model(result.model, "model", input_example=input_example(train[task.inputs]),
                                       pip_requirements=task.pip_requirements, code_paths=task.code_paths)
    return TaskOutcome(result, run.id, model_uri)


def where_it_runs() -> dict[str, str]:
    """Tags naming the batch job a task ran in (Slurm), so a run leads to its job's logs."""
    import os

    job = os.environ.get("SLURM_JOB_ID")
    return {"wxops.slurm_job_id": job} if job else {}


def input_example(frame: pd.DataFrame) -> Any:
    """First rows with naive UTC times (MLflow's schema has no time zones)."""
    example = frame.head(5).copy()
    if "time" in example.columns:
        example["time"] = example["time"].dt.tz_convert("UTC").dt.tz_localize(None)
    # float32 and float64 inputs give one signature type ("double")
    floats = example.select_dtypes("float32").columns
    return example.astype(dict.fromkeys(floats, "float64")) if len(floats) else example
