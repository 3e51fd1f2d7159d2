"""Prediction log: every request's inputs, outputs, model version and time, for monitoring.

Requests only append an entry to a bounded in-memory queue (no I/O, no serialisation on
the request path). A background thread drains the queue every ``flush_seconds``: it fills
the predicted-value histogram and appends the entries to the store in one transaction
(SQLite) or one new file (Parquet, written beside and renamed into place, so readers
never see a partial file).

Durability: a crash (kill -9, power loss) loses at most the entries that arrived since
the last flush, i.e. at most ``flush_seconds`` of traffic and at most ``max_queue``
requests. A normal shutdown flushes everything. When the queue is full (the store is
slower than the traffic), new entries are dropped and counted in
``wxops_prediction_log_dropped_total``; predictions are never slowed down or failed by
the log.

Both stores have the columns ``received_at`` (UTC ISO time), ``endpoint``,
``model_name``, ``model_version``, ``run_id``, ``n_rows``, ``inputs`` (JSON object of
column lists, times as UTC epoch milliseconds like pandas' ``to_json``) and ``outputs``
(JSON list; for a model with named outputs, such as the probabilities per threshold of a
probability model, a JSON object of column lists ``{"p_below_1000": [...], ...}``, so the
log names what it stores without a schema change). Read them with
``sqlite3``/pandas (``SELECT * FROM predictions``) or ``pandas.read_parquet(folder)``.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from wxops.errors import ServeError
from wxops.serve.metrics import ServiceMetrics
from wxops.serve.settings import PredictionLogSettings

log = logging.getLogger(__name__)

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
COLUMNS: tuple[str, ...] = ("received_at", "endpoint", "model_name", "model_version", "run_id",
                            "n_rows", "inputs", "outputs")


@dataclass(frozen=True)
class LogEntry:
    """One answered request, as it was answered."""

    received_at: float
    endpoint: str
    model_name: str
    model_version: str
    run_id: str
    inputs: dict[str, np.ndarray]
    outputs: np.ndarray
    output_columns: tuple[str, ...] = ()
    """Names of the output columns when ``outputs`` is rows x columns."""


class _Store(Protocol):
    def write(self, rows: list[tuple[Any, ...]]) -> None: ...
    def close(self) -> None: ...


#: Page size of a new log file: a 100-row request's inputs (~5 KB of JSON) fit in one
#: page instead of a chain of 4 KB overflow pages. SQLite's CPU per logged request
#: (3000 such requests, committed 300 at a time) fell from 20-24 us (4 KB pages, default
#: checkpoint) to 12 us.
PAGE_SIZE = 65536
#: Checkpoint the write-ahead log at ~16 MB (256 pages of PAGE_SIZE).
WAL_CHECKPOINT_PAGES = 256


class SQLiteStore:
    """Appends to table ``predictions`` of a SQLite file (WAL: several workers may write)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            # applies to a new file only (an existing log keeps its page size)
            self._conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            # WAL + NORMAL: a committed flush survives a process crash (not power loss)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS predictions (id INTEGER PRIMARY KEY, "
                "received_at TEXT, endpoint TEXT, model_name TEXT, model_version TEXT, "
                "run_id TEXT, n_rows INTEGER, inputs TEXT, outputs TEXT)")
            self._conn.commit()
        except sqlite3.Error as exc:
            raise ServeError(f"prediction log {path}: cannot open it as SQLite ({exc})") from exc

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        with self._conn:
            self._conn.executemany(
                f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES "
                f"({', '.join('?' * len(COLUMNS))})", rows)

    def close(self) -> None:
        self._conn.close()


class ParquetStore:
    """Writes one Parquet file per flush into a folder (``pandas.read_parquet(folder)``)."""

    def __init__(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServeError(f"prediction log {folder}: cannot create the folder "
                             f"({exc.strerror})") from exc
        self._folder = folder
        self._seq = itertools.count()

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(COLUMNS)})
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        final = self._folder / f"part-{stamp}-{os.getpid()}-{next(self._seq):06d}.parquet"
        tmp = final.with_name("." + final.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, final)

    def close(self) -> None:
        return None


def open_store(settings: PredictionLogSettings) -> _Store | None:
    """The configured store, or None when the log is off."""
    if settings.path is None:
        return None
    if settings.format == "sqlite":
        return SQLiteStore(settings.path)
    return ParquetStore(settings.path)


class PredictionSink:
    """Bounded queue of answered requests, drained by a background thread."""

    def __init__(self, settings: PredictionLogSettings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self._metrics = metrics
        self._store = open_store(settings)
        self._queue: collections.deque[LogEntry] = collections.deque()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, entry: LogEntry) -> None:
        """Queue ``entry`` (constant time); drop and count it when the queue is full."""
        if len(self._queue) >= self.settings.max_queue:
            self._metrics.log_dropped.inc()
            return
        self._queue.append(entry)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wxops-prediction-log",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is left (a normal shutdown loses nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()
        if self._store is not None:
            self._store.close()

    def flush(self) -> int:
        """Drain the queue now; returns how many requests were written."""
        with self._flush_lock:
            entries = []
            while self._queue:
                entries.append(self._queue.popleft())
            if not entries:
                return 0
            values = [e.outputs for e in entries if not e.output_columns]  # metres, not p
            if values:
                self._metrics.values.observe_all(np.concatenate(values))
            if self._store is None:
                return 0
            rows = _rows(entries)
            try:
                self._store.write(rows)
            except (OSError, sqlite3.Error) as exc:
                # The log must never take the service down; the loss is counted and logged.
                self._metrics.log_dropped.inc(len(rows))
                log.error("prediction log: %d entries lost: %s", len(rows), exc)
                return 0
            self._metrics.log_written.inc(len(rows))
            return len(rows)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.flush_seconds):
            self.flush()


#: Entries formatted between two releases of the GIL (see :func:`_rows`).
FORMAT_SLICE = 8


def _rows(entries: list[LogEntry]) -> list[tuple[Any, ...]]:
    """The store's rows of ``entries``, letting the event loop in every few entries.

    Formatting holds the GIL (orjson, ~30 us per 100-row entry). A second of traffic
    formatted at once kept the event loop of a busy worker waiting up to ~0.1 s: each time
    the loop released the GIL for I/O this thread took it for up to the interpreter's
    5 ms switch interval (p99 120 ms at 2500 requests/s of 100 rows). ``time.sleep(0)``
    after every FORMAT_SLICE entries (~0.25 ms) hands the GIL back (p99 ~30 ms).
    """
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(entries), FORMAT_SLICE):
        if start:
            time.sleep(0)
        rows.extend(_row(e) for e in entries[start:start + FORMAT_SLICE])
    return rows


def _row(entry: LogEntry) -> tuple[Any, ...]:
    received = dt.datetime.fromtimestamp(entry.received_at, dt.UTC).isoformat(
        timespec="milliseconds")
    # orjson writes float64 arrays natively; times go as epoch milliseconds (UTC), as
    # pandas' to_json() writes them (pd.to_datetime(values, unit="ms") reads them back)
    inputs = {name: (arr.astype("datetime64[ms]").astype(np.int64) if arr.dtype.kind == "M"
                     else arr.tolist() if arr.dtype.kind == "O"  # strings (station ids)
                     else arr) for name, arr in entry.inputs.items()}
    outputs: Any = entry.outputs
    if entry.output_columns:
        outputs = {name: np.ascontiguousarray(entry.outputs[:, j])
                   for j, name in enumerate(entry.output_columns)}
    return (received, entry.endpoint, entry.model_name, entry.model_version, entry.run_id,
            len(entry.outputs), orjson.dumps(inputs, option=_NUMPY).decode(),
            orjson.dumps(outputs, option=_NUMPY).decode())
