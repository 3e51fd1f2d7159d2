"""The prediction log: SQLite or Parquet, off the request path, bounded, flushed on stop."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wxops.errors import ServeError
from wxops.serve.metrics import ServiceMetrics
from wxops.serve.predlog import LogEntry, PredictionSink
from wxops.serve.settings import PredictionLogSettings


def _entry(i: int) -> LogEntry:
    return LogEntry(received_at=1.7e9 + i, endpoint="/predict", model_name="visibility",
                    model_version="1", run_id="r" * 32,
                    inputs={"t2m": np.array([float(i)]),
                            "time": np.array(["2020-01-01T00:00"], dtype="datetime64[ns]")},
                    outputs=np.array([1000.0 + i]))


def test_sqlite_log_and_final_flush(tmp_path: Path) -> None:
    path = tmp_path / "log" / "p.db"
    sink = PredictionSink(PredictionLogSettings(path=path, flush_seconds=60), ServiceMetrics())
    sink.start()
    for i in range(5):
        sink.submit(_entry(i))
    sink.stop()  # a normal shutdown writes what is queued
    frame = pd.read_sql("SELECT * FROM predictions", sqlite3.connect(path))
    assert len(frame) == 5
    assert frame.loc[0, "inputs"] == '{"t2m":[0.0],"time":[1577836800000]}'
    assert frame.loc[4, "outputs"] == "[1004.0]"
    assert frame.loc[0, "received_at"].startswith("2023-11-14T22:13:20")


def test_parquet_log_flushes_in_the_background(tmp_path: Path) -> None:
    folder = tmp_path / "plog"
    sink = PredictionSink(PredictionLogSettings(path=folder, format="parquet",
                                                flush_seconds=0.05), ServiceMetrics())
    sink.start()
    sink.submit(_entry(1))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not list(folder.glob("*.parquet")):
        time.sleep(0.02)
    sink.submit(_entry(2))
    sink.stop()
    frame = pd.read_parquet(folder)
    assert sorted(frame["outputs"]) == ["[1001.0]", "[1002.0]"]
    assert len(list(folder.glob("*.parquet"))) == 2
    assert not list(folder.glob(".*tmp"))


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    metrics = ServiceMetrics()
    sink = PredictionSink(PredictionLogSettings(path=tmp_path / "p.db", max_queue=2),
                          metrics)
    for i in range(5):
        sink.submit(_entry(i))
    assert sink.flush() == 2
    assert metrics.log_dropped._value.get() == 3
    assert metrics.log_written._value.get() == 2
    assert metrics.values._sum.get() == pytest.approx(1000.0 + 1001.0)


def test_unusable_sqlite_path(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(ServeError, match="cannot open it as SQLite"):
        PredictionSink(PredictionLogSettings(path=tmp_path / "dir.db"), ServiceMetrics())


def test_log_off_still_counts_predicted_values() -> None:
    metrics = ServiceMetrics()
    sink = PredictionSink(PredictionLogSettings(), metrics)
    sink.submit(_entry(0))
    assert sink.flush() == 0
    assert metrics.values._sum.get() == 1000.0


def test_bulk_observe_matches_one_by_one() -> None:
    from wxops.serve.predlog import observe_all

    values = np.array([0.0, 199.9, 200.0, 200.1, 5000.0, 1e6, np.nan])
    bulk, single = ServiceMetrics(), ServiceMetrics()
    observe_all(bulk.values, values)
    for v in values[~np.isnan(values)]:
        single.values.observe(float(v))
    assert [b.get() for b in bulk.values._buckets] == [b.get() for b in single.values._buckets]
    assert bulk.values._sum.get() == single.values._sum.get()
