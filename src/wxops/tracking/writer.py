"""The session's one background thread: every write nobody waits for, in order.

Training must not wait on the store: a synchronous round trip per metric costs ~3 ms on
SQLite and ~15 ms over HTTP, and a write per epoch competes with short epochs for the
interpreter (+42 % measured on the reference MLPs). So the callers queue their writes
here and one thread does them:

- *batches* (metrics, params, tags of a run) are merged per run and written with one
  ``log_batch`` when their interval is up, or before the next ordered write;
- *jobs* (run creations, run ends, dataset inputs) run in the order they came, each
  after every batch queued before it; a run's entities wait for the job creating it;
- *samplers* (system metrics of a run) are polled on the same thread at their interval.

The writes made *during* training (a run's live points, due after their interval) share
the interpreter with it, so they get a budget: after such a write that took ``t`` seconds
the next one waits at least ``t / budget`` (2 % by default: a 5 ms SQLite write keeps the
2 s interval, a 100 ms write on a loaded machine or a slow server stretches it to 5 s).
Nothing is dropped: a run's end, a job or a drain writes everything pending at once.
Live points do not wake the thread one by one either: the first of a window schedules
the write, the rest are appended under a lock (a queue put per epoch hands the
interpreter to the writer and back).

An error is kept and raised by :meth:`Writer.drain` on the caller's thread (at the
latest when the outermost run ends), so nothing fails silently; after an error the
writer skips the rest until it is drained.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from wxops.errors import TrackingError

_log = logging.getLogger("wxops.tracking")

#: MLflow's limits of one ``log_batch`` call.
MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000
#: Share of wall time the writes due during a run (live points) may take.
DEFAULT_BUDGET = 0.02
#: Name of the writer's thread (a wait for something only it can do must not run on it).
WRITER_THREAD = "wxops-tracking-writer"


class Sampler(Protocol):
    """Something that measures a run now and then (see :mod:`wxops.tracking.system`)."""

    interval: float

    def start(self) -> None:
        """Begin measuring (called on the writer thread when the watch begins)."""

    def sample(self) -> list[Any]:
        """Take one sample; return the metric points due now (maybe none)."""

    def final(self) -> list[Any]:
        """Take the last sample; return every point not returned yet."""


@dataclass
class Batch:
    """Pending metrics, params and tags of one run (MLflow entities)."""

    metrics: list[Any] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    tags: list[Any] = field(default_factory=list)
    due: float = math.inf

    def merge(self, other: Batch) -> None:
        """Append ``other``'s entities (its due time is the caller's to combine)."""
        self.metrics += other.metrics
        self.params += other.params
        self.tags += other.tags

    def chunks(self) -> list[tuple[list[Any], list[Any], list[Any]]]:
        """The batch cut into pieces within MLflow's limits per call."""
        metrics, params, tags = list(self.metrics), list(self.params), list(self.tags)
        out = []
        while metrics or params or tags:
            p, params = params[:MAX_PARAMS], params[MAX_PARAMS:]
            t, tags = tags[:MAX_TAGS], tags[MAX_TAGS:]
            room = min(MAX_METRICS, MAX_ENTITIES - len(p) - len(t))
            m, metrics = metrics[:room], metrics[room:]
            out.append((m, p, t))
        return out


@dataclass
class _Add:
    run_id: str
    batch: Batch
    interval: float | None


@dataclass
class _Job:
    fn: Callable[[], None]
    skipped: Callable[[BaseException], None] | None = None
    creates: str | None = None


@dataclass
class _Watch:
    run_id: str
    sampler: Sampler | None  # None: stop watching (after a last sample)


@dataclass
class _Wake:
    """Live points are waiting (see :meth:`Writer.add`)."""


@dataclass
class _Barrier:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


def _started(sampler: Sampler) -> list[Any]:
    sampler.start()
    return []

#: Writes one batch of a run: ``log_batch(run_id, metrics, params, tags)``.
LogBatch = Callable[[str, list[Any], list[Any], list[Any]], None]


class Writer:
    """One daemon thread writing queued batches and jobs; see the module docstring."""

    def __init__(self, log_batch: LogBatch, *, budget: float = DEFAULT_BUDGET) -> None:
        if not 0 < budget <= 1:
            raise ValueError(f"write budget must be a share of time in (0, 1], got {budget}")
        self._log_batch = log_batch
        self._budget = budget
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[str, Batch] = {}
        self._live: dict[str, Batch] = {}  # live points not yet seen by the thread
        self._live_lock = threading.Lock()
        self._live_due = math.inf  # when the thread looks at them (a wake is queued for it)
        self._unborn: set[str] = set()  # runs whose creating job has not run: their writes wait
        self._quiet_until = 0.0  # no live write before this (the budget)
        self.live_writes = 0
        """How many writes of live points the thread made (for tests and benchmarks)."""
        self._samplers: dict[str, tuple[Sampler, float]] = {}
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._loop, name=WRITER_THREAD, daemon=True)
        self._thread.start()

    # --- the caller's side ---

    def add(self, run_id: str, *, metrics: list[Any] | None = None, params: list[Any] | None = None,
            tags: list[Any] | None = None, interval: float | None = None) -> None:
        """Queue entities of ``run_id``: written after ``interval`` seconds (or later, within
        the write budget), or (None) with the next job or drain."""
        batch = Batch(metrics or [], params or [], tags or [])
        if interval is None:
            self._queue.put(_Add(run_id, batch, None))
            return
        due = time.monotonic() + interval
        with self._live_lock:
            live = self._live.setdefault(run_id, Batch())
            live.merge(batch)
            live.due = min(live.due, due)
            wake = due < self._live_due
            if wake:
                self._live_due = due
        if wake:
            self._queue.put(_Wake())

    def submit(self, job: Callable[[], None], *,
               skipped: Callable[[BaseException], None] | None = None,
               creates: str | None = None) -> None:
        """Queue ``job``; it runs after everything queued before it. When an earlier write
        failed the job is skipped; ``skipped(error)`` then tells whoever waits on it.

        ``creates``: the job creates the run of that key, so none of the run's entities is
        written before it ran (live points may otherwise overtake a job queued before them).
        """
        if creates is not None:
            with self._live_lock:
                self._unborn.add(creates)
        self._queue.put(_Job(job, skipped, creates))

    def watch(self, run_id: str, sampler: Sampler) -> None:
        """Poll ``sampler`` every ``sampler.interval`` s and log its points to ``run_id``."""
        self._queue.put(_Watch(run_id, sampler))

    def unwatch(self, run_id: str) -> None:
        """Take the last sample of ``run_id`` and stop polling (before its run ends)."""
        self._queue.put(_Watch(run_id, None))

    def drain(self) -> None:
        """Wait until everything queued so far is written; raise the first error."""
        if not self._thread.is_alive():
            raise TrackingError("the tracking writer has stopped; connect() again")
        barrier = _Barrier()
        self._queue.put(barrier)
        barrier.done.wait()
        if self._errors:
            error, self._errors = self._errors[0], []
            raise TrackingError(f"a tracking write failed: {error}") from error

    def close(self) -> None:
        """Write what is queued and end the thread (errors are dropped: drain first)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    # --- the writer's side ---

    def _loop(self) -> None:
        while True:
            batches = [b.due for b in self._pending.values() if b.due != math.inf]
            if batches:
                batches = [max(min(batches), self._quiet_until)]
            due = min(batches + [d for _, d in self._samplers.values()] + [self._live_due],
                      default=math.inf)
            try:
                item = self._queue.get(timeout=None if due == math.inf else max(0.0, due - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                self._take_live()
                self._flush(everything=True)
                return
            self._handle(item)
            self._tick()

    def _take_live(self) -> None:
        """Move the live points added so far into the pending batches."""
        with self._live_lock:
            live, self._live, self._live_due = self._live, {}, math.inf
        for run_id, batch in live.items():
            pending = self._pending.setdefault(run_id, Batch())
            pending.merge(batch)
            pending.due = min(pending.due, batch.due)

    def _handle(self, item: Any) -> None:
        if not isinstance(item, _Add | _Wake | type(None)):
            self._take_live()  # an ordered item comes after every point added before it
        if isinstance(item, _Add):
            batch = self._pending.setdefault(item.run_id, Batch())
            batch.merge(item.batch)
            if item.interval is not None:
                batch.due = min(batch.due, time.monotonic() + item.interval)
        elif isinstance(item, _Job):
            self._flush(everything=True)
            if self._errors and item.skipped is not None:
                item.skipped(self._errors[0])
            self._guard(item.fn)
            if item.creates is not None:
                with self._live_lock:
                    self._unborn.discard(item.creates)
        elif isinstance(item, _Watch):
            if item.sampler is not None:
                sampler = item.sampler
                self._samplers[item.run_id] = (sampler, 0.0)
                self._sampled(item.run_id, lambda: _started(sampler))
                if item.run_id in self._samplers:
                    self._samplers[item.run_id] = (sampler, time.monotonic() + sampler.interval)
            elif item.run_id in self._samplers:
                sampler, _ = self._samplers.pop(item.run_id)
                self._sampled(item.run_id, sampler.final)
        elif isinstance(item, _Barrier):
            self._flush(everything=True)
            item.done.set()

    def _tick(self) -> None:
        now = time.monotonic()
        if self._live_due <= now:
            self._take_live()
        for run_id, (sampler, due) in list(self._samplers.items()):
            if now >= due:
                self._samplers[run_id] = (sampler, now + sampler.interval)
                self._sampled(run_id, sampler.sample)
        self._flush(everything=False)

    def _sampled(self, run_id: str, take: Callable[[], list[Any]]) -> None:
        """Points of a sampler into the run's batch; a sampler that fails stops, the run goes on
        (system metrics are a help, not the run's result)."""
        try:
            points = take()
        except Exception as exc:
            self._samplers.pop(run_id, None)
            _log.warning("system metrics of run %s stopped: %s: %s", run_id, type(exc).__name__, exc)
            return
        if points:
            self._pending.setdefault(run_id, Batch()).metrics.extend(points)

    def _flush(self, *, everything: bool) -> None:
        now = time.monotonic()
        if not everything and now < self._quiet_until:
            return  # live points wait for the budget; ordered writes never do
        with self._live_lock:
            unborn = set(self._unborn)
        due = [r for r, b in self._pending.items()
               if (everything or b.due <= now) and r not in unborn]
        for run_id in due:
            batch = self._pending.pop(run_id)
            for metrics, params, tags in batch.chunks():
                self._guard(lambda: self._log_batch(run_id, metrics, params, tags), run_id)  # noqa: B023
        if due and not everything:
            took = time.monotonic() - now
            self._quiet_until = now + took / self._budget
            self.live_writes += 1

    def _guard(self, fn: Callable[[], None], run_id: str | None = None) -> None:
        if self._errors:
            return  # the first error is what the caller needs; drain() raises it
        try:
            fn()
        except Exception as exc:
            if run_id is None:
                self._errors.append(exc)
                return
            wrapped = TrackingError(f"logging to run {run_id} failed: {exc}")
            wrapped.__cause__ = exc
            self._errors.append(wrapped)
