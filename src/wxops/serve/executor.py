"""Where a prediction runs: on the event loop when cheap, else in a bounded thread pool.

A prediction on the event-loop thread blocks every other connection of the worker for its
duration. For a few rows that is cheaper than the hop to a thread (tens of microseconds),
so cheap predictions stay inline. Anything whose *measured* cost exceeds a small bound
(``inline_seconds``) runs in a pool of ``threads`` threads; at most ``queue_limit``
predictions may wait or run there, and the next one is refused with 503 and
``Retry-After`` (counted in ``wxops_predictions_rejected_total``) instead of queueing
without end. So one slow batch delays no other connection, and an overload is answered
at once rather than by timeouts.

The cost of a request is estimated as ``fixed + per_row * rows`` per model version:
measured on synthetic batches when the version is loaded (:meth:`PredictionRunner.calibrate`)
and then followed by an exponential moving average of every prediction's measured time.
The time measured is the thread's CPU time, not wall time: on a busy machine a cheap
prediction preempted for 20 ms is still cheap, and sending it to the pool would only add
a thread hop and the GIL hand-over between the pool and the loop (milliseconds each).

Threads: a prediction on the event loop runs with one intra-op thread (PyTorch, OpenMP):
a few hundred rows gain nothing from more, and on a busy machine a second thread waiting
at an OpenMP barrier for a preempted sibling stalls the loop for milliseconds. The pool's
predictions of at least :data:`PARALLEL_ROWS` rows use the worker's thread budget
(:func:`wxops.startup.thread_budget`), where a big batch does gain from it. PyTorch and
OpenMP keep the thread count per calling thread, so each side sets its own.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from wxops.errors import PayloadError

T = TypeVar("T")

#: Bodies larger than this are also decoded in the pool (decoding them is not cheap).
THREAD_BODY_BYTES = 256 * 1024
#: Rows up to which a call counts as "fixed cost" in the estimate.
_SMALL_ROWS = 16
_CALIBRATION_ROWS = 256
#: Batches below this many rows predict with one thread in the pool too: more threads gain
#: nothing there (an MLP on 100 rows: 20 us either way) and, on a busy machine, a thread
#: waiting at an OpenMP barrier for a preempted sibling costs milliseconds (p99 x 500).
PARALLEL_ROWS = 4096
_ALPHA = 0.2


class Overloaded(PayloadError):
    """The prediction queue is full: answered 503 with ``Retry-After``."""

    def __init__(self, queued: int, retry_after: int) -> None:
        super().__init__(f"server busy: {queued} predictions queued (the queue limit); retry "
                         f"in {retry_after} s, send smaller batches, or start more workers",
                         status=503)
        self.retry_after = retry_after


@dataclass
class CostModel:
    """``seconds(rows) = fixed + per_row * rows``, kept up to date by measurements."""

    fixed: float | None = None
    per_row: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def estimate(self, rows: int) -> float | None:
        """Expected seconds for ``rows`` rows, None before any measurement."""
        if self.fixed is None:
            return None
        return self.fixed + (self.per_row or 0.0) * rows

    def observe(self, rows: int, seconds: float) -> None:
        """Blend one measured prediction into the model."""
        with self._lock:
            if rows <= _SMALL_ROWS or self.fixed is None:
                self.fixed = seconds if self.fixed is None else (
                    (1 - _ALPHA) * self.fixed + _ALPHA * seconds)
                if rows <= _SMALL_ROWS:
                    return
            marginal = max(0.0, seconds - self.fixed) / rows
            self.per_row = marginal if self.per_row is None else (
                (1 - _ALPHA) * self.per_row + _ALPHA * marginal)


class PredictionRunner:
    """Runs predictions inline or in a bounded pool, by their measured cost.

    Args:
        inline_seconds: predictions expected to take at most this long run on the event
            loop; longer ones in the pool.
        queue_limit: predictions waiting or running in the pool before new ones are refused.
        threads: threads of the pool (each prediction still uses the worker's thread
            budget for its own arithmetic).
        intra_threads: PyTorch/OpenMP threads of one pool prediction (the worker's thread
            budget; default ``$WXOPS_BUDGET_THREADS``, else 1).
        on_event: called with ``"inline"``, ``"pool"`` or ``"rejected"`` for metrics, and
            with ``"queue"`` plus the current depth whenever it changes.
    """

    def __init__(self, *, inline_seconds: float = 0.001, queue_limit: int = 32,
                 threads: int = 1, intra_threads: int | None = None,
                 on_event: Callable[[str, int], None] | None = None) -> None:
        self.inline_seconds = inline_seconds
        self.queue_limit = queue_limit
        self.threads = threads
        self.intra_threads = intra_threads or int(os.environ.get("WXOPS_BUDGET_THREADS", "1"))
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wxops-predict")
        self._pending = 0
        self.generation = 0
        """Bumped at each calibration (a new model may have loaded new libraries)."""
        self._costs: dict[Any, CostModel] = {}
        self._on_event = on_event or (lambda _kind, _n: None)

    @property
    def pending(self) -> int:
        """Predictions waiting or running in the pool now."""
        return self._pending

    def cost(self, key: Any) -> CostModel:
        """The cost model of one model version (``key``: anything hashable naming it)."""
        found = self._costs.get(key)
        if found is None:
            found = self._costs[key] = CostModel()
        return found

    def in_pool(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a pool thread, with the pool's thread settings, and wait for it."""
        def job() -> T:
            pin_threads(self.intra_threads, self.generation)
            return fn()

        return self._pool.submit(job).result()

    def calibrate(self, key: Any, predict: Callable[[Any], np.ndarray],
                  sample: Callable[[int], Any]) -> None:
        """Measure a freshly loaded version on 1 and 256 synthetic rows, one thread (as
        inline predictions run), in the calling thread (off the loop)."""
        self.generation += 1
        pin_threads(1, self.generation)
        cost = self.cost(key)
        for rows in (1, 1, _CALIBRATION_ROWS):
            batch = sample(rows)
            started = time.thread_time()
            predict(batch)
            cost.observe(rows, time.thread_time() - started)

    def forget(self, key: Any) -> None:
        """Drop the cost model of a version no longer served."""
        self._costs.pop(key, None)

    async def run(self, key: Any, body: bytes, decode: Callable[[bytes], T],
                  rows: Callable[[T], int], predict: Callable[[T], np.ndarray]
                  ) -> tuple[T, np.ndarray]:
        """Decode ``body`` and predict, each where it belongs; raises :class:`Overloaded`."""
        cost = self.cost(key)
        if len(body) > THREAD_BODY_BYTES:
            guess = cost.estimate(max(1, len(body) // 80)) or self.inline_seconds
            return await self._submit(lambda: self._decode_predict(cost, body, decode, rows,
                                                                   predict), guess)
        batch = decode(body)
        n = rows(batch)
        estimate = cost.estimate(n)
        if estimate is not None and estimate <= self.inline_seconds:
            self._on_event("inline", 1)
            pin_threads(1, self.generation)
            return batch, self._timed(cost, n, batch, predict)

        def job() -> tuple[T, np.ndarray]:
            pin_threads(self._threads_for(n), self.generation)
            return batch, self._timed(cost, n, batch, predict)

        return await self._submit(job, estimate or self.inline_seconds)

    def shutdown(self) -> None:
        """Finish running predictions and stop the pool's threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _decode_predict(self, cost: CostModel, body: bytes, decode: Callable[[bytes], T],
                        rows: Callable[[T], int], predict: Callable[[T], np.ndarray]
                        ) -> tuple[T, np.ndarray]:
        batch = decode(body)
        pin_threads(self._threads_for(rows(batch)), self.generation)
        return batch, self._timed(cost, rows(batch), batch, predict)

    def _threads_for(self, rows: int) -> int:
        return self.intra_threads if rows >= PARALLEL_ROWS else 1

    @staticmethod
    def _timed(cost: CostModel, n: int, batch: T, predict: Callable[[T], np.ndarray]
               ) -> np.ndarray:
        started = time.thread_time()
        result = predict(batch)
        cost.observe(n, time.thread_time() - started)
        return result

    async def _submit(self, job: Callable[[], tuple[T, np.ndarray]], estimate: float
                      ) -> tuple[T, np.ndarray]:
        if self._pending >= self.queue_limit:
            self._on_event("rejected", 1)
            wait = estimate * (self._pending + 1) / self.threads
            raise Overloaded(self._pending, max(1, math.ceil(wait)))
        loop = asyncio.get_running_loop()
        self._pending += 1
        self._on_event("pool", 1)
        self._on_event("queue", self._pending)

        def release(_: Any) -> None:
            loop.call_soon_threadsafe(self._release)

        future = self._pool.submit(job)
        future.add_done_callback(release)
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self._pending -= 1
        self._on_event("queue", self._pending)


_thread = threading.local()


def pin_threads(n: int, generation: int = 0) -> None:
    """Give the calling thread ``n`` PyTorch/OpenMP threads (both keep them per thread).

    OpenMP libraries are set through threadpoolctl once per thread and ``generation``
    (bumped when a model load may have brought new libraries); PyTorch's count is
    checked on every call (a sub-microsecond read). BLAS pools are process-wide and stay
    at the worker's budget.
    """
    if getattr(_thread, "pinned", None) != (n, generation):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="openmp")
        _thread.pinned = (n, generation)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def model_key(model: Any) -> tuple[str, str, str]:
    """Names one loaded model version (a reload of the same version is a new one)."""
    return (model.name, model.version, model.loaded_at)


def attach_runner(holder: Any, metrics: Any, *, inline_seconds: float, queue_limit: int
                  ) -> PredictionRunner:
    """A runner for ``holder``'s models: calibrated at each swap, counted in ``metrics``."""
    from wxops.serve.fastpath import synthetic_batch

    counters = {where: metrics.predictions.labels(where) for where in ("inline", "pool")}

    def on_event(kind: str, n: int) -> None:
        if kind == "queue":
            metrics.queue.set(n)
        elif kind == "rejected":
            metrics.rejected.inc()
        else:
            counters[kind].inc()

    runner = PredictionRunner(inline_seconds=inline_seconds, queue_limit=queue_limit,
                              on_event=on_event)

    def on_swap(old: Any, new: Any) -> None:
        if old is not None:
            runner.forget(model_key(old))
        runner.calibrate(model_key(new), new.predict,
                         lambda rows: synthetic_batch(new.schema, rows))
        # a model may bring torch (and its OpenMP) with it; read from a pool thread
        runner.in_pool(metrics.report_threads)

    holder.subscribe(on_swap=on_swap)
    runner.in_pool(metrics.report_threads)
    return runner
