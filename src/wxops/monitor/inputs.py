"""Readers of what the monitor joins: the service's prediction log and observation files.

Both return tidy tables with a naive-UTC ``valid_time``/``time``. Errors name the file
and the column, so an operator can fix a feed without reading code.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from wxops.errors import MonitorError

#: Columns of the long prediction table built from the log (besides the input columns).
FORECAST_COLUMNS: tuple[str, ...] = ("received_at", "model_name", "model_version", "run_id",
                                     "time", "forecast")
#: A probability model's output column (``wxops.models.probability.probability_column``).
_PROBABILITY = re.compile(r"^p_(below|above)_([0-9.eE+-]+)$")


def probability_columns(frame: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """``{"p_below_1000": ("below", 1000.0), ...}``: the probability outputs a prediction
    table holds (a probability version's log), in increasing threshold; empty for a
    version that predicts the value itself."""
    found: dict[str, tuple[str, float]] = {}
    for col in frame.columns:
        match = _PROBABILITY.match(str(col))
        if match is not None:
            try:
                found[str(col)] = (match[1], float(match[2]))
            except ValueError:
                continue
    return dict(sorted(found.items(), key=lambda item: item[1][1]))


def read_prediction_log(path: Path) -> pd.DataFrame:
    """The prediction log as one row per predicted row (not per request).

    Reads the SQLite file or the Parquet folder that ``wxops serve --prediction-log``
    writes. Columns: ``received_at`` (naive UTC), ``model_name``, ``model_version``,
    ``run_id``, ``time`` (the input's time, naive UTC), ``forecast`` and every input
    column of the request. A probability version's entries give its named outputs
    (``p_below_1000``...) as columns instead, with ``forecast`` left empty. Only what the
    log stores is read: no request headers, no tokens.
    """
    if not path.exists():
        raise MonitorError(f"{path}: prediction log not found; start `wxops serve "
                           f"--prediction-log {path}` or set monitor.prediction_log")
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise MonitorError(f"{path}: the Parquet prediction-log folder holds no .parquet file")
        try:
            raw = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        except (OSError, ValueError) as exc:
            raise MonitorError(f"{path}: cannot read the Parquet prediction log ({exc})") from exc
    else:
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
                raw = pd.read_sql_query("SELECT received_at, model_name, model_version, run_id, "
                                        "inputs, outputs FROM predictions ORDER BY id", conn)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise MonitorError(f"{path}: not a wxops prediction log (SQLite table "
                               f"'predictions' expected): {exc}") from exc
    return explode_requests(raw, source=str(path))


def explode_requests(raw: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """One row per predicted row from one row per request (``inputs``/``outputs`` JSON)."""
    if raw.empty:
        return pd.DataFrame(columns=list(FORECAST_COLUMNS))
    parts: list[pd.DataFrame] = []
    for rec in raw.itertuples(index=False):
        try:
            inputs = json.loads(rec.inputs)
            outputs = json.loads(rec.outputs)
        except (TypeError, json.JSONDecodeError) as exc:
            raise MonitorError(f"{source}: a prediction-log entry is not valid JSON ({exc})") from exc
        frame = pd.DataFrame(inputs)
        named = outputs if isinstance(outputs, dict) else {}  # probabilities per threshold
        lengths = {k: len(v) for k, v in named.items()}
        if named and len(set(lengths.values())) > 1:
            raise MonitorError(f"{source}: an entry's output columns differ in length {lengths}")
        n_out = len(next(iter(named.values()), [])) if named else len(outputs)
        if len(frame) != n_out:
            raise MonitorError(f"{source}: an entry has {len(frame)} input rows but "
                               f"{n_out} outputs")
        if named:
            for name, values in named.items():
                frame[name] = np.asarray(values, dtype=float)
            frame["forecast"] = np.nan
        else:
            frame["forecast"] = np.asarray(outputs, dtype=float)
        frame["received_at"] = rec.received_at
        frame["model_name"] = rec.model_name
        frame["model_version"] = str(rec.model_version)
        frame["run_id"] = rec.run_id
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True)
    if "init_time" in out.columns:  # an NWP MOS model: forecasts keyed by init and lead time
        if "time" not in out.columns:
            out["time"] = out["init_time"]  # epoch ms, parsed below
        out["init_time"] = pd.to_datetime(out["init_time"], unit="ms")
    if "time" not in out.columns:
        raise MonitorError(f"{source}: the logged inputs have no 'time' column; the monitor "
                           "joins forecasts to observations by valid time")
    out["time"] = pd.to_datetime(out["time"], unit="ms")
    out["received_at"] = pd.to_datetime(out["received_at"], utc=True).dt.tz_localize(None)
    return out


def read_observations(path: Path, *, target: str, time_column: str = "time") -> pd.DataFrame:
    """An observation file (CSV or Parquet): ``time``, the target, optional ``station``.

    Further numeric columns (observed predictors such as ``t2m``) are kept: the drift
    check compares the served inputs with them. Times are read as UTC (naive times are
    taken to be UTC) and returned naive.
    """
    if not path.is_file():
        raise MonitorError(f"{path}: observation file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".gz"):
            frame = pd.read_csv(path)
        else:
            raise MonitorError(f"{path}: unknown observation format '{suffix}'; use .csv or .parquet")
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise MonitorError(f"{path}: cannot read the observation file ({exc})") from exc
    missing = [c for c in (time_column, target) if c not in frame.columns]
    if missing:
        raise MonitorError(f"{path}: missing column(s) {missing}; an observation file needs "
                           f"'{time_column}' (valid time, UTC) and '{target}' (have "
                           f"{list(frame.columns)[:12]})")
    try:
        times = pd.to_datetime(frame[time_column], utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise MonitorError(f"{path}: column '{time_column}' holds values that are not "
                           f"times ({exc})") from exc
    out = frame.drop(columns=[time_column]).copy()
    out.insert(0, "time", times.dt.tz_localize(None))
    for col in out.columns:
        if col in ("time", "station"):
            continue
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() & out[col].notna()
        if col == target and bad.any():
            example = out.loc[bad, col].iloc[0]
            raise MonitorError(f"{path}: column '{col}' holds non-numeric values such as {example!r}")
        if bad.any():
            out = out.drop(columns=[col])  # a text column (e.g. a remark) is not an observation
        else:
            out[col] = values.astype(float)
    if "station" in out.columns:
        out["station"] = out["station"].astype(str)
    return out.dropna(subset=["time"]).reset_index(drop=True)


def read_observation_files(paths: list[Path], *, target: str) -> pd.DataFrame:
    """Several observation files as one table; a later file's value wins for a repeated time."""
    if not paths:
        raise MonitorError("no observation file given (--observations FILE or --observations-dir DIR)")
    frames = [read_observations(p, target=target) for p in paths]
    obs = pd.concat(frames, ignore_index=True)
    keys = ["time", "station"] if "station" in obs.columns else ["time"]
    return obs.drop_duplicates(subset=keys, keep="last").sort_values(keys).reset_index(drop=True)
