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


def test_sqlite_log_pages_new_files_large_and_appends_to_an_old_one(tmp_path: Path) -> None:
    """A new log gets 64 KB pages (a request's inputs in one page); a log written with
    SQLite's default 4 KB pages by an earlier version keeps them and is appended to."""
    from wxops.serve.predlog import PAGE_SIZE

    fresh = tmp_path / "new.db"
    sink = PredictionSink(PredictionLogSettings(path=fresh), ServiceMetrics())
    sink.submit(_entry(0))
    sink.stop()
    with sqlite3.connect(fresh) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE predictions (id INTEGER PRIMARY KEY, received_at TEXT, "
                     "endpoint TEXT, model_name TEXT, model_version TEXT, run_id TEXT, "
                     "n_rows INTEGER, inputs TEXT, outputs TEXT)")
        conn.execute("INSERT INTO predictions (received_at, n_rows, inputs, outputs) "
                     "VALUES ('2020-01-01T00:00:00.000', 1, '{}', '[1.0]')")
    sink = PredictionSink(PredictionLogSettings(path=old), ServiceMetrics())
    sink.submit(_entry(1))
    sink.stop()
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert [r[0] for r in conn.execute("SELECT outputs FROM predictions ORDER BY id")] == [
            "[1.0]", "[1001.0]"]


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
    assert _sample(metrics, "wxops_prediction_log_dropped_total") == 3
    assert _sample(metrics, "wxops_prediction_log_written_total") == 2
    assert _sample(metrics, "wxops_predicted_value_sum") == pytest.approx(1000.0 + 1001.0)


def test_unusable_sqlite_path(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(ServeError, match="cannot open it as SQLite"):
        PredictionSink(PredictionLogSettings(path=tmp_path / "dir.db"), ServiceMetrics())


def test_log_off_still_counts_predicted_values() -> None:
    metrics = ServiceMetrics()
    sink = PredictionSink(PredictionLogSettings(), metrics)
    sink.submit(_entry(0))
    assert sink.flush() == 0
    assert _sample(metrics, "wxops_predicted_value_sum") == 1000.0


_VALUES_TEXT = "[0.0, 199.9, 200.0, 200.1, 5000.0, 1e6, float('nan')]"
_MULTIPROCESS_SCRIPT = """
import numpy as np
from wxops.serve.metrics import ServiceMetrics
metrics = ServiceMetrics()
assert metrics.multiprocess
values = np.array(%s)
metrics.values.observe_all(values[:3])
metrics.values.observe_all(values[3:])
print(metrics.render().decode())
"""


@pytest.mark.parametrize("multiprocess", [False, True])
def test_predicted_values_fill_buckets_like_observe_and_skip_nan(multiprocess: bool, tmp_path: Path) -> None:
    """One process: NumPy counts behind a collector; several workers (multiprocess mode,
    chosen when prometheus-client is imported, hence a subprocess): the shared files.
    Both expose what one ``Histogram.observe`` per value gives, NaN left out."""
    import os
    import subprocess
    import sys

    from prometheus_client import CollectorRegistry, Histogram

    from wxops.serve.metrics import VALUE_BUCKETS

    values = np.array([0.0, 199.9, 200.0, 200.1, 5000.0, 1e6, np.nan])
    if multiprocess:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
        text = subprocess.run([sys.executable, "-c", _MULTIPROCESS_SCRIPT % _VALUES_TEXT], env=env,
                              capture_output=True, text=True, check=True, timeout=120).stdout
    else:
        metrics = ServiceMetrics()
        metrics.values.observe_all(values[:3])
        metrics.values.observe_all(values[3:])
        text = metrics.render().decode()
    reference = CollectorRegistry()
    one_by_one = Histogram("ref", "reference", buckets=VALUE_BUCKETS, registry=reference)
    for value in values[~np.isnan(values)]:
        one_by_one.observe(float(value))
    for bound in [*VALUE_BUCKETS, float("inf")]:
        label = "+Inf" if bound == float("inf") else str(bound)
        assert _parsed(text, "wxops_predicted_value_bucket", le=label) == reference.get_sample_value(
            "ref_bucket", {"le": label}), label
    # cumulative counts per upper bound (le): a value on a bound counts in that bucket
    for label, count in {"200.0": 3, "400.0": 4, "5000.0": 5, "100000.0": 5, "+Inf": 6}.items():
        assert _parsed(text, "wxops_predicted_value_bucket", le=label) == count
    assert _parsed(text, "wxops_predicted_value_count") == 6
    assert _parsed(text, "wxops_predicted_value_sum") == pytest.approx(1_005_600.0)


@pytest.mark.parametrize("whole_counts", [True, False])
def test_shared_histogram_gets_whole_counts_or_one_observe_per_value(whole_counts: bool) -> None:
    """The shared (multiprocess) histogram is filled with one write per bucket where
    prometheus-client's values are reachable, else by one observe per value; both give
    the buckets and sum of observing each value."""
    from prometheus_client import CollectorRegistry, Histogram

    from wxops.serve.metrics import VALUE_BUCKETS, ValueHistogram

    hist = ValueHistogram("v", "values", VALUE_BUCKETS, registry=None)  # the shared kind
    assert hist._shared_values is not None  # prometheus-client 0.26 keeps them reachable
    if not whole_counts:
        hist._shared_values = None
    values = np.array([0.0, 199.9, 200.0, 200.1, 5000.0, 1e6, np.nan, 16_000.0])
    hist.observe_all(values[:4])
    hist.observe_all(values[4:])
    reference = Histogram("v", "values", buckets=VALUE_BUCKETS, registry=CollectorRegistry())
    for value in values[~np.isnan(values)]:
        reference.observe(float(value))

    def samples(h: Histogram) -> dict[tuple[str, str], float]:
        return {(s.name, s.labels.get("le", "")): s.value
                for family in h.collect() for s in family.samples if "created" not in s.name}

    assert hist._shared is not None
    assert samples(hist._shared) == samples(reference)
    assert samples(reference)[("v_count", "")] == 7


def _sample(metrics: ServiceMetrics, name: str, **labels: str) -> float:
    """A sample as ``GET /metrics`` exposes it."""
    return _parsed(metrics.render().decode(), name, **labels)


def _parsed(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    found = [s.value for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{len(found)} samples {name}{labels} in {text}"
    return float(found[0])


@pytest.mark.parametrize("n", [0, 1, 8, 9, 17])
def test_flush_formats_in_slices_and_keeps_every_entry_in_order(tmp_path: Path, n: int) -> None:
    """The flush lets the event loop in every FORMAT_SLICE entries; the rows it writes
    are still every entry, in arrival order, formatted as one pass would."""
    from wxops.serve.predlog import FORMAT_SLICE, _row, _rows

    assert FORMAT_SLICE == 8  # the sizes above straddle slice edges
    entries = [_entry(i) for i in range(n)]
    assert _rows(entries) == [_row(e) for e in entries]
    path = tmp_path / "p.db"
    sink = PredictionSink(PredictionLogSettings(path=path, flush_seconds=60), ServiceMetrics())
    for entry in entries:
        sink.submit(entry)
    assert sink.flush() == n
    frame = pd.read_sql("SELECT * FROM predictions ORDER BY id", sqlite3.connect(path))
    assert frame["outputs"].tolist() == [f"[{1000.0 + i}]" for i in range(n)]
