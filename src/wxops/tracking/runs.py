"""Runs and what is logged into them: params, metrics, tags, datasets, artifacts.

Runs are kept on the session's own stack (not MLflow's fluent one), so the session can
move them to the outbox mid-run without MLflow noticing. Params, metrics and tags go to
the session's writer, which merges each run's into one ``log_batch``. :func:`start_run`
creates its run on the caller's thread (the caller gets the id); :func:`open_run` leaves
that to the writer, so a configuration's run is created while it trains: the session
names such a run by a ``pending-`` key until the writer knows its id, and every write
resolves the key (an artifact or a model waits for it).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wxops.errors import TrackingError
from wxops.tracking import internals, session

if TYPE_CHECKING:
    import pandas as pd

#: Parameter values longer than MLflow's limit are cut to this length.
_MAX_PARAM = 6000


@contextlib.contextmanager
def start_run(
    experiment_id: str,
    run_name: str,
    *,
    parent_run_id: str | session.RunRef | None = None,
    tags: dict[str, str] | None = None,
    system_metrics: float | None = None,
) -> Iterator[str]:
    """Start a run, yield its id; an exception inside marks it FAILED and re-raises.

    ``system_metrics``: seconds between samples of CPU, memory (and GPU) logged as
    ``system/...`` metrics of this run (see :mod:`wxops.tracking.system`); None: none.
    """
    with _run(experiment_id, run_name, parent_run_id=parent_run_id, tags=tags,
              system_metrics=system_metrics, defer=False) as ref:
        yield ref.id


@contextlib.contextmanager
def open_run(
    experiment_id: str,
    run_name: str,
    *,
    parent_run_id: str | session.RunRef | None = None,
    tags: dict[str, str] | None = None,
    system_metrics: float | None = None,
) -> Iterator[session.RunRef]:
    """:func:`start_run` whose run the writer thread creates: the caller goes on at once.

    For a run that is mostly training (a configuration): its creation overlaps with the
    training instead of delaying it. Logging to the run (params, metrics, tags, an
    :func:`epoch_logger` of the :class:`~wxops.tracking.session.RunRef`) needs no id; the
    ref's ``id`` waits for it, and so do artifacts and models. A failed creation is raised
    by ``id`` and by the end of the outermost run. Its status, the offline switch and
    the order of writes are those of :func:`start_run`.
    """
    with _run(experiment_id, run_name, parent_run_id=parent_run_id, tags=tags,
              system_metrics=system_metrics, defer=True) as ref:
        yield ref


@contextlib.contextmanager
def _run(
    experiment_id: str,
    run_name: str,
    *,
    parent_run_id: str | session.RunRef | None,
    tags: dict[str, str] | None,
    system_metrics: float | None,
    defer: bool,
) -> Iterator[session.RunRef]:
    import uuid

    from wxops import redact
    from wxops.outbox import TARGET_TAG, outbox_artifacts
    from wxops.tracking.system import SystemSampler, check_interval

    if system_metrics is not None:
        check_interval(system_metrics)
    clean = {k: str(v) for k, v in redact.redact_mapping(dict(tags or {})).items()}
    run_name = redact.redact_text(run_name)  # stored as mlflow.runName too
    start_ms = int(time.time() * 1000)
    s = session.current()
    if s.context_tags is None:
        s.context_tags = internals.context_tags()
    context = s.context_tags
    parent_key = parent_run_id.key if isinstance(parent_run_id, session.RunRef) else parent_run_id
    offline = False

    def create(client: Any) -> str:
        nonlocal offline
        exp, parent, extra = experiment_id, parent_key, {}
        offline = s.offline
        if s.offline and s.outbox is not None:
            exp = session.local_experiment(client, experiment_id, outbox_artifacts(s.outbox))
            extra = {TARGET_TAG: s.uri}
        if parent is not None:
            parent = session.rid(parent)
        all_tags = {k: redact.redact_text(str(v)) for k, v in {**context, **clean, **extra}.items()}
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent
        return str(client.create_run(exp, start_time=start_ms, tags=all_tags, run_name=run_name).info.run_id)

    if defer:
        ref = session.RunRef(f"pending-{uuid.uuid4().hex}", run_name)
        s.pending[ref.key] = ref
    else:
        run_id = session.write(create)
        ref = session.RunRef(run_id, run_name)
    frame = session.Frame(ref.key, experiment_id, run_name, parent_key, clean, start_ms,
                          sampled=system_metrics is not None)
    if defer:
        def job() -> None:
            try:
                run_id = session.write(create)
            except BaseException as exc:
                ref.fail(exc)
                raise
            session.created(ref, frame, run_id, offline=offline)

        session.writer().submit(job, skipped=ref.fail, creates=ref.key)
    else:
        session.created(ref, frame, run_id, offline=offline)
    s.stack.append(frame)
    if system_metrics is not None:
        session.writer().watch(ref.key, SystemSampler(ref.key, system_metrics))
    try:
        yield ref
    except BaseException:
        _end_run(ref.key, "FAILED")
        raise
    _end_run(ref.key, "FINISHED")


def _end_run(run_id: str, status: str) -> None:
    s = session.current()
    end_ms = int(time.time() * 1000)
    try:
        if any(f.sampled for f in s.stack if f.run_id == run_id):
            session.writer().unwatch(run_id)
        session.write_later(lambda c: c.set_terminated(session.rid(run_id), status, end_time=end_ms))
    finally:
        s.stack = [f for f in s.stack if f.run_id != run_id]
    if not s.stack:  # the outermost run: everything is stored when it returns
        session.drain()


def failed_runs_cleanup() -> None:
    """End any run left active by an exception (marks it FAILED)."""
    import sys

    s = session.current()
    while s.stack:
        with contextlib.suppress(TrackingError):  # the error that got us here is reported
            _end_run(s.stack[-1].run_id, "FAILED")
    if "mlflow" not in sys.modules:
        return
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run(status="FAILED")


def log_params(params: dict[str, Any]) -> None:
    """Log flat parameters of the active run (nested values as compact JSON, secrets redacted)."""
    from mlflow.entities import Param

    from wxops import redact

    flat = {
        k: (json.dumps(redact.redact_tree(v), sort_keys=True) if isinstance(v, dict | list) else v)
        for k, v in params.items()
    }
    clean = redact.redact_mapping(flat)
    batch = [Param(k, str(v)[:_MAX_PARAM]) for k, v in clean.items()]
    session.writer().add(session.rid_now(), params=batch)


def log_metrics(metrics: dict[str, float], *, step: int | None = None) -> None:
    """Log metrics to the active run."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
    session.writer().add(session.rid_now(), metrics=batch)


def set_tags(tags: dict[str, Any]) -> None:
    """Set tags of the active run (secret-looking ones redacted)."""
    from mlflow.entities import RunTag

    from wxops import redact

    batch = [RunTag(k, str(v)) for k, v in redact.redact_mapping(tags).items()]
    session.writer().add(session.rid_now(), tags=batch)


def epoch_logger(
    run_id: str | session.RunRef, *, interval: float = 2.0
) -> tuple[Callable[[int, float, float | None], None], Callable[[], None]]:
    """A per-epoch callback logging train/val loss off the training thread, and its flush."""
    log, flush = metrics_logger(run_id, interval=interval)

    def on_epoch(epoch: int, train_loss: float, val_loss: float | None) -> None:
        log(epoch, {"train_loss": train_loss} if val_loss is None else
            {"train_loss": train_loss, "val_loss": val_loss})

    return on_epoch, flush


def metrics_logger(
    run_id: str | session.RunRef, *, interval: float = 2.0
) -> tuple[Callable[[int, dict[str, float]], None], Callable[[], None]]:
    """A callback ``log(step, {key: value})`` that never waits on the store, and its flush.

    Points go to the session's writer, which writes them with one ``log_batch`` at most
    every ``interval`` seconds, less often when writes are slow (its write budget, see
    :mod:`wxops.tracking.writer`), and with the run's end; a step costs an append under a
    lock instead of a round trip, and the UI sees new points within about ``interval``. MLflow's
    own buffered async logging is the baseline of ``benchmarks/bench_tracking_overhead.py``.

    Inside a run, ``flush`` returns at once (the run's end writes the rest); outside a run
    it waits. Either way an error is raised, never silent.
    """
    from mlflow.entities import Metric

    w = session.writer()
    key = run_id.key if isinstance(run_id, session.RunRef) else run_id

    def log(step: int, values: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        w.add(key, metrics=[Metric(k, float(v), now, step) for k, v in values.items()],
              interval=interval)

    def flush() -> None:
        if not session.current().stack:
            session.drain()

    return log, flush


def log_history(run_id: str | session.RunRef, history: list[dict[str, float | None]]) -> None:
    """Log a whole loss history at once (for a configuration reused from the cache)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    points = [
        Metric(key, float(value), now, epoch)
        for epoch, point in enumerate(history)
        for key, value in point.items()
        if value is not None
    ]
    session.writer().add(run_id.key if isinstance(run_id, session.RunRef) else run_id, metrics=points)


def log_dataset(
    frame: pd.DataFrame, *, source: str, name: str, digest: str, context: str, targets: str | None
) -> None:
    """Record a dataset as an input of the active run (MLflow's dataset lineage)."""
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag

    from wxops import redact

    dataset = from_pandas(frame, source=redact.redact_text(source), name=redact.redact_text(name),
                          targets=targets, digest=digest[:36])
    entity = DatasetInput(internals.dataset_entity(dataset), tags=[
        InputTag("mlflow.data.context", context), InputTag("sha256", digest)])
    run_id = session.rid_now()
    session.write_later(lambda c: c.log_inputs(session.rid(run_id), datasets=[entity]))


def log_dict(payload: dict[str, Any], artifact_file: str) -> None:
    """Write ``payload`` as a JSON/YAML artifact of the active run, secrets redacted."""
    from wxops import redact

    clean = redact.redact_tree(payload)
    session.write(lambda c: c.log_dict(session.rid(), clean, artifact_file))


def log_text(text: str, artifact_file: str) -> None:
    """Write ``text`` (e.g. a log) as an artifact of the active run, secrets redacted."""
    from wxops import redact

    clean = redact.redact_text(text)
    session.write(lambda c: c.log_text(session.rid(), clean, artifact_file))


def log_artifact(path: Path, artifact_path: str | None = None) -> None:
    """Upload a file to the active run; a text file is scrubbed of secrets on the way."""
    import tempfile

    from wxops import redact

    with tempfile.TemporaryDirectory() as tmp:
        upload = path
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            text = None
        if text is not None:
            clean = redact.redact_text(text)
            if clean != text:
                upload = Path(tmp) / path.name
                upload.write_text(clean, encoding="utf-8")
        session.write(lambda c: c.log_artifact(session.rid(), str(upload), artifact_path))


def log_folder_to_run(run_id: str, folder: Path, artifact_path: str) -> None:
    """Upload every file of ``folder`` under ``artifact_path`` of an existing run."""
    from mlflow.exceptions import MlflowException

    try:
        session.client().log_artifacts(run_id, str(folder), artifact_path)
    except MlflowException as exc:
        raise TrackingError(f"cannot log {folder} to run {run_id}: {exc}") from exc


def log_text_to_run(run_id: str, text: str, artifact_file: str) -> None:
    """Write ``text`` as an artifact file of an existing run (secrets redacted)."""
    from wxops import redact

    session.client().log_text(run_id, redact.redact_text(text), artifact_file)


def log_metrics_to_run(run_id: str, metrics: dict[str, float]) -> None:
    """Log metrics (e.g. a version's test-block scores) to an existing, finished run."""
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
    session.drain()

    def write(client: Any) -> None:
        target = session.target_run(client, run_id)
        for i in range(0, len(batch), 1000):
            client.log_batch(target, metrics=batch[i:i + 1000])

    try:
        session.write(write)
    except MlflowException as exc:
        raise TrackingError(f"cannot log metrics to run {run_id}: {exc}") from exc


def fail_unfinished_children(parent_run_id: str) -> list[str]:
    """Mark nested runs of ``parent_run_id`` still RUNNING as FAILED; return their ids.

    A Dask task killed with its worker cannot end its own run; the retry starts a fresh
    one, so the orphan is closed here instead of showing as running for ever.
    """
    import mlflow

    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'",
    )
    for run in runs:
        client.set_terminated(run.info.run_id, status="FAILED")
    return [run.info.run_id for run in runs]
