"""Which store this process writes to, its open runs, and the switch to the outbox.

A run against a team server must survive the server going away: every write goes
through :func:`write`, which on "server unreachable" moves the whole session to the
outbox (a local SQLite store), mirrors the open runs there and repeats the write.
`wxops sync` (:mod:`wxops.sync`) later uploads what the outbox holds.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from wxops.errors import TrackingError
from wxops.tracking.writer import WRITER_THREAD, Writer

_log = logging.getLogger("wxops.tracking")
#: Experiment tag read by MLflow's UI to choose the experiment's view (outbox experiments
#: get it too, so they open alike after `wxops sync`).
KIND_TAG = "mlflow.experimentKind"
#: Its value for machine-learning model training (the other main kind is "genai_development").
KIND_TRAINING = "custom_model_development"
_T = TypeVar("_T")


def resolve_tracking_uri(configured: str | None, project_dir: Path) -> str:
    """Config's ``tracking.uri``, else ``MLFLOW_TRACKING_URI``, else SQLite in the project."""
    if configured:
        return configured
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(project_dir / 'mlflow.db').resolve()}"


def default_artifact_root(uri: str, project_dir: Path) -> str | None:
    """Local artifact folder beside an embedded SQLite store; the server decides otherwise."""
    if uri.startswith("sqlite:"):
        return (project_dir / "mlartifacts").resolve().as_uri()
    return None


class RunRef:
    """A run of this session that the writer thread creates (see :func:`wxops.tracking.open_run`).

    Creating a run is a store round trip (~10 ms on SQLite, more over HTTP or on a loaded
    machine) that training would otherwise wait for at every configuration. Everything
    wxops logs to the run only needs :attr:`key` (the writer resolves it in order); whatever
    needs the store's id (a model, an artifact, a caller) reads :attr:`id`, which waits.
    """

    def __init__(self, key: str, name: str) -> None:
        self.key = key
        """This session's name of the run: the store's id once known, a ``pending-`` key before."""
        self.name = name
        self.created_offline = False
        """Whether the run was created in the outbox (the server was gone by then)."""
        self._done = threading.Event()
        self._id: str | None = None
        self._error: BaseException | None = None

    def resolve(self, run_id: str, *, offline: bool) -> None:
        """The writer created the run (in the outbox when ``offline``)."""
        self._id, self.created_offline = run_id, offline
        self._done.set()

    def fail(self, error: BaseException) -> None:
        """The run was not created (its creation failed, or an earlier write did)."""
        self._error = error
        self._done.set()

    @property
    def ready(self) -> bool:
        """Whether the run exists (its id is known) or its creation failed."""
        return self._done.is_set()

    @property
    def failed(self) -> bool:
        """Whether the run could not be created."""
        return self._done.is_set() and self._error is not None

    @property
    def id(self) -> str:
        """The run's id in the store; waits until the writer created it, TrackingError if it could not."""
        if not self._done.is_set():
            if threading.current_thread().name == WRITER_THREAD:
                raise TrackingError(f"run '{self.name}' is read on the writer before it is created")
            self._done.wait()
        if self._error is not None:
            raise TrackingError(f"run '{self.name}' was not created: {self._error}") from self._error
        assert self._id is not None
        return self._id


@dataclass
class Frame:
    """One open run of this process (the tracking stack, parent first)."""

    run_id: str
    experiment_id: str
    name: str
    parent: str | None
    tags: dict[str, str]
    start_ms: int
    sampled: bool = False
    """Whether the writer samples its system metrics."""


@dataclass
class Session:
    """What this process knows about the store it writes to."""

    uri: str = ""
    outbox: Path | None = None
    offline: bool = False
    exp_names: dict[str, str] = field(default_factory=dict)
    """experiment id -> name, for mirroring into the outbox."""
    local_exp: dict[str, str] = field(default_factory=dict)
    """server experiment id -> outbox experiment id."""
    local_run: dict[str, str] = field(default_factory=dict)
    """run key (and server run id) -> outbox run id (runs open when the server went away)."""
    pending: dict[str, RunRef] = field(default_factory=dict)
    """``pending-`` key -> its run, for the runs the writer creates (:func:`real_id`)."""
    stack: list[Frame] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    writer: Writer | None = None
    ended: dict[str, Frame] = field(default_factory=dict)
    """Runs of this session that ended (on the server), for a later write offline."""
    context_tags: dict[str, str] | None = None
    """MLflow's context tags (user, source, git commit): the same for every run of a process."""


_session = Session()


def current() -> Session:
    """The session of this process (replaced by :func:`connect`)."""
    return _session


def connect(uri: str, *, outbox: Path | None = None, secrets: Iterable[str] | None = None) -> None:
    """Point MLflow's tracking and registry at ``uri``; set the secrets to redact.

    ``secrets=None`` keeps those already set, so a nested caller (a training task run in
    the pipeline's process) cannot switch redaction off for the rest of the pipeline.

    With ``outbox`` and a server URI, logging falls back to the outbox store when the
    server is unreachable (see :func:`is_offline`). MLflow also exports the URI to
    ``MLFLOW_TRACKING_URI``; the user's own value is put back, so a later pipeline in
    the same process resolves its store afresh.
    """
    from wxops import redact
    from wxops.outbox import is_remote

    global _session
    if secrets is not None:
        redact.configure(secrets)
    if _session.stack and _session.uri == uri:
        return  # a nested caller inside an open run: keep its session (and its offline state,
        # and its queued writes: no wait here, so a training task starts at once)
    drain()
    if _session.writer is not None:
        _session.writer.close()
    _session = Session(uri=uri, outbox=outbox if is_remote(uri) else None)
    point_at(uri)


def point_at(uri: str) -> None:
    """Set MLflow's tracking and registry URI in this process only.

    MLflow also exports both to ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI``; the
    user's own values are put back, so a child process (``wxops serve --tracking-uri``)
    or a later pipeline in this process is not sent to this store's registry.
    """
    import mlflow

    before = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def current_uri() -> str:
    """The tracking URI this process writes to now (for messages)."""
    import mlflow

    return str(mlflow.get_tracking_uri())


def is_offline() -> bool:
    """Whether this session logs into the outbox because the server went away."""
    return _session.offline


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the server is gone (not: refused, wrong input, no permission)."""
    import requests

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                      | ConnectionError | TimeoutError):
            return True
        text = str(cur)
        if any(s in text for s in ("Max retries exceeded", "Connection refused", "Connection aborted",
                                   "RemoteDisconnected", "Failed to establish a new connection",
                                   "too many 502", "too many 503", "too many 504")):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def write(fn: Callable[[Any], _T]) -> _T:
    """Run ``fn(client)`` on the current store; move to the outbox if the server is gone."""
    import mlflow

    if not _session.offline:
        try:
            return fn(mlflow.MlflowClient(tracking_uri=_session.uri or None))
        except Exception as exc:
            if _session.outbox is None or not unreachable(exc):
                raise
            go_offline(exc)
    return fn(mlflow.MlflowClient())


def writer() -> Writer:
    """The session's background writer (started on first use)."""
    if _session.writer is None:
        _session.writer = Writer(_log_batch)
    return _session.writer


def _log_batch(run_id: str, metrics: list[Any], params: list[Any], tags: list[Any]) -> None:
    write(lambda c: c.log_batch(target_run(c, run_id), metrics=metrics, params=params, tags=tags))


def write_later(fn: Callable[[Any], object]) -> None:
    """Queue a write whose result nobody needs; it keeps the offline switch of :func:`write`."""
    def job() -> None:
        write(fn)

    writer().submit(job)


def drain() -> None:
    """Wait for queued writes (before a read, or a write that depends on them)."""
    if _session.writer is not None:
        _session.writer.drain()


def client() -> Any:
    """An MLflow client for a read (or a write of the release cycle) that sees every
    write queued before it."""
    import mlflow

    drain()
    return mlflow.MlflowClient()


def go_offline(exc: BaseException) -> None:
    """Switch to the outbox once; mirror the open runs there so logging continues."""
    import mlflow

    from wxops.outbox import outbox_uri

    with _session.lock:
        if _session.offline:
            return
        assert _session.outbox is not None
        _session.outbox.mkdir(parents=True, exist_ok=True)
        # Mirror first, switch after: another thread sees either the server or a complete outbox.
        c = mlflow.MlflowClient(tracking_uri=outbox_uri(_session.outbox))
        for frame in _session.stack:
            ref = _session.pending.get(frame.run_id)
            if ref is not None and (not ref.ready or ref.failed):
                continue  # the writer creates it later, in the outbox (or mirrors it then)
            mirror_open(c, frame)
        point_at(outbox_uri(_session.outbox))
        _session.offline = True
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        _log.warning("tracking server %s unreachable (%s); logging continues offline in %s: "
                     "run `wxops sync` when it is back", _session.uri, reason, _session.outbox)


def mirror_open(c: Any, frame: Frame) -> str:
    """An outbox run continuing ``frame``, a run open on the server when it went away;
    returns its outbox id."""
    from wxops.outbox import REMOTE_RUN_TAG, TARGET_TAG, outbox_artifacts

    assert _session.outbox is not None
    server_id = real_id(frame.run_id)
    exp = local_experiment(c, frame.experiment_id, outbox_artifacts(_session.outbox))
    tags = {**frame.tags, TARGET_TAG: _session.uri, REMOTE_RUN_TAG: server_id}
    if frame.parent is not None:
        tags["mlflow.parentRunId"] = _session.local_run.get(frame.parent) or real_id(frame.parent)
    run = c.create_run(exp, start_time=frame.start_ms, tags=tags, run_name=frame.name)
    _session.local_run[frame.run_id] = _session.local_run[server_id] = run.info.run_id
    return str(run.info.run_id)


def created(ref: RunRef, frame: Frame, run_id: str, *, offline: bool) -> None:
    """Record that ``frame``'s run exists now: as ``run_id`` on the server or (``offline``)
    in the outbox; a server run created while another thread switched to the outbox is
    mirrored there at once, like the runs that were open then."""
    import mlflow

    from wxops.outbox import outbox_uri

    with _session.lock:
        ref.resolve(run_id, offline=offline)
        if offline:
            return
        _session.ended[frame.run_id] = frame  # for a write after the server went away
        if _session.offline:
            assert _session.outbox is not None
            mirror_open(mlflow.MlflowClient(tracking_uri=outbox_uri(_session.outbox)), frame)


def real_id(key: str) -> str:
    """The store's id of the run this session calls ``key`` (waits for a run the writer creates)."""
    ref = _session.pending.get(key)
    return ref.id if ref is not None else key


def local_experiment(c: Any, experiment_id: str, artifact_root: str) -> str:
    """Outbox experiment standing in for server experiment ``experiment_id``."""
    if experiment_id in _session.local_exp or experiment_id in _session.local_exp.values():
        return _session.local_exp.get(experiment_id, experiment_id)
    name = _session.exp_names.get(experiment_id, f"offline-{experiment_id}")
    exp = c.get_experiment_by_name(name)
    local = str(exp.experiment_id) if exp is not None else str(
        c.create_experiment(name, artifact_location=artifact_root, tags={KIND_TAG: KIND_TRAINING}))
    _session.local_exp[experiment_id] = local
    return local


def rid(run_id: str | None = None) -> str:
    """The id to write to: the active run by default, its outbox mirror when offline."""
    if run_id is None:
        if not _session.stack:
            raise TrackingError("no active run: log inside tracking.start_run()")
        run_id = _session.stack[-1].run_id
    if _session.offline and run_id in _session.local_run:
        return _session.local_run[run_id]
    return real_id(run_id)


def rid_now() -> str:
    """The active run's key (see :class:`RunRef`), fixed now for a write that runs later."""
    if not _session.stack:
        raise TrackingError("no active run: log inside tracking.start_run()")
    return _session.stack[-1].run_id


def target_run(c: Any, run_id: str) -> str:
    """The id to write ``run_id``'s entities to now; offline, a run that ended on the server
    before it went away continues in an outbox run (see :func:`mirror_ended`)."""
    target = rid(run_id)
    if _session.offline and run_id not in _session.local_run and run_id in _session.ended:
        target = mirror_ended(c, _session.ended[run_id])
    return target


def mirror_ended(c: Any, frame: Frame) -> str:
    """An outbox run continuing a run that ended on the server before it went away."""
    local_id = mirror_open(c, frame)
    c.set_terminated(local_id, "FINISHED")
    return local_id


def active_run_id() -> str | None:
    """Id of the innermost open run (as the server knows it; waits until it exists), or None."""
    return real_id(_session.stack[-1].run_id) if _session.stack else None
