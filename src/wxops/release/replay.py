"""Forecast-cycling replay: run models over the test block as operations would have.

Cycle by cycle, in time order, the input of each forecast is assembled from the
observations *available at the cycle's issue time* only (every row at or before it), the
models predict, and the observation that arrives ``lead_time`` hours later verifies the
forecast. Nothing from the future can reach an input, whatever the feature table did.

Inputs are assembled cycle by cycle; the models then predict all cycles in one batch.
A wxops model is stateless from row to row, so a forecast does not depend on when
``predict`` is called, only on its input, and the batch gives the same numbers as a
call per cycle (a test checks this) in a fraction of the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wxops.config import FeaturesConfig
from wxops.errors import VerificationError
from wxops.features import TARGET
from wxops.verify.references import Climatology

_LAG = re.compile(r"^(?P<col>.+)_lag(?P<hours>\d+)h$")


@dataclass
class Replay:
    """One row per forecast cycle: issue and valid time, observation, each forecast."""

    frame: pd.DataFrame
    """Columns ``issue_time, valid_time, obs, latest_data_time`` (``station, lead_time`` for
    NWP tables) and one per source."""
    cycle_hours: int
    notes: list[str] = field(default_factory=list)

    def forecasts(self) -> dict[str, np.ndarray]:
        """Source name -> forecast values, in cycle order."""
        fixed = {"issue_time", "valid_time", "obs", "latest_data_time", "station", "lead_time"}
        return {c: self.frame[c].to_numpy(dtype=float) for c in self.frame.columns
                if c not in fixed}


def assemble_inputs(
    history: pd.DataFrame, issue_time: pd.Timestamp, inputs: list[str], target: str
) -> pd.DataFrame | None:
    """The model input at ``issue_time`` built from ``history`` (rows up to issue time).

    Lags are looked up within the issue time's block, as in training. Returns None when
    no observation exists at the issue time (the cycle cannot run).
    """
    by_time = history.set_index("time")
    if issue_time not in by_time.index:
        return None
    now = by_time.loc[issue_time]
    block = now["block"]
    row: dict[str, Any] = {}
    for name in inputs:
        if name == "time":
            row["time"] = issue_time.tz_convert("UTC").tz_localize(None)
            continue
        lag = _LAG.match(name)
        if name in by_time.columns and lag is None:
            row[name] = now[name]
        elif lag is not None:
            when = issue_time - pd.Timedelta(hours=int(lag["hours"]))
            past: Any = by_time.loc[when] if when in by_time.index else None
            ok = past is not None and past["block"] == block
            row[name] = past[lag["col"]] if ok else np.nan
        else:
            raise VerificationError(f"replay cannot build input '{name}' from the observations")
    return pd.DataFrame([row], columns=inputs)


def replay_cycles(
    models: dict[str, Any],
    obs: pd.DataFrame,
    test: pd.DataFrame,
    *,
    inputs: list[str],
    features: FeaturesConfig,
    cycle_hours: int,
    climatology: Climatology | None = None,
    nwp_column: str | None = None,
) -> Replay:
    """Replay ``models`` (name -> object with ``predict``) over the test block's cycles.

    Args:
        models: e.g. ``{"candidate": model, "champion": model}``.
        obs: the QC'd observations (``time``, ``block``, predictors, target), all blocks.
        test: the test rows of the feature table; their times are the candidate cycles
            (those whose hour is a multiple of ``cycle_hours``) and ``y`` verifies them.
        inputs: the model's input columns (``FeatureTable.inputs``).
        features: the features config (target name and lead time).
        cycle_hours: hours between cycles (6: 00, 06, 12, 18 UTC).
        climatology: adds the climatological forecast for each valid time.
        nwp_column: a raw NWP forecast column of ``test`` (issued before the cycle, so
            available at it) that becomes the ``nwp`` reference.
    """
    if test.empty:
        raise VerificationError("the test block is empty; nothing to replay")
    lead = features.lead_time or 0
    history_all = obs.sort_values("time").reset_index(drop=True)
    times = history_all["time"]
    cycles = test[test["time"].dt.hour % cycle_hours == 0].sort_values("time")
    if cycles.empty:
        raise VerificationError(f"no test row falls on a {cycle_hours}-hourly cycle")
    rows = []
    batch = []
    skipped = 0
    for _, case in cycles.iterrows():
        issue = case["time"]
        end = int(times.searchsorted(issue, side="right"))
        history = history_all.iloc[:end]  # only what was observed by the issue time
        x = assemble_inputs(history, issue, inputs, features.target)
        if x is None or x.drop(columns=["time"], errors="ignore").isna().any(axis=None):
            skipped += 1
            continue
        out: dict[str, Any] = {
            "issue_time": issue, "valid_time": issue + pd.Timedelta(hours=lead),
            "obs": float(case[TARGET]), "latest_data_time": history["time"].iloc[-1],
        }
        batch.append(x)
        if nwp_column is not None:
            out["nwp"] = float(case[nwp_column])
        if features.lead_time is not None:
            out["persistence"] = float(history[features.target].iloc[-1])
        rows.append(out)
    if not rows:
        raise VerificationError("no forecast cycle had a complete input")
    frame = pd.DataFrame(rows)
    x_all = pd.concat(batch, ignore_index=True)
    for name, model in models.items():
        frame[name] = np.asarray(model.predict(x_all), dtype=float).reshape(-1)
    if climatology is not None:
        frame["climatology"] = climatology.predict(frame["valid_time"])
    notes = [f"{len(frame)} cycles every {cycle_hours} h replayed in time order"]
    if skipped:
        notes.append(f"{skipped} cycles skipped: no complete input at issue time")
    return Replay(frame, cycle_hours, notes)


def replay_init_times(
    table: pd.DataFrame,
    forecasts: dict[str, np.ndarray],
    *,
    cycle_hours: int,
    climatology: Climatology | None = None,
    nwp_column: str | None = None,
) -> Replay:
    """Multi-station forecast cycling of an NWP (MOS) test table, init time by init time.

    A MOS forecast's inputs are the NWP forecast issued at ``init_time`` (and the valid
    time), all known at the init time, so each row of the table is the forecast
    operations would have issued then; the replay keeps the init times on the cycle
    (hour a multiple of ``cycle_hours``) and orders rows by init time, station and lead
    time, so a bootstrap block of consecutive rows spans whole cycles.

    Args:
        table: test rows with ``station, init_time, lead_time, valid_time`` and ``y``.
        forecasts: source name -> forecasts aligned with ``table`` (each model's own).
        cycle_hours: hours between replayed init times.
        climatology: adds the climatological forecast for each valid time.
        nwp_column: the raw NWP forecast column of ``table`` (the ``nwp`` reference).
    """
    missing = sorted({"station", "init_time", "lead_time", "valid_time", TARGET} - set(table))
    if missing:
        raise VerificationError(f"the NWP test table lacks columns {missing}")
    on_cycle = (pd.to_datetime(table["init_time"], utc=True).dt.hour % cycle_hours == 0).to_numpy()
    if not on_cycle.any():
        raise VerificationError(f"no init time of the test block falls on a {cycle_hours}-hourly "
                                "cycle (gate.replay_cycle_hours)")
    rows = table.assign(_row=np.arange(len(table)))[on_cycle].sort_values(
        ["init_time", "station", "lead_time"], kind="stable")
    idx = rows["_row"].to_numpy()
    frame = pd.DataFrame({
        "issue_time": rows["init_time"].to_numpy(), "valid_time": rows["valid_time"].to_numpy(),
        "station": rows["station"].to_numpy(), "lead_time": rows["lead_time"].to_numpy(),
        "obs": rows[TARGET].to_numpy(dtype=float),
        "latest_data_time": rows["init_time"].to_numpy(),
    })
    if nwp_column is not None:
        frame["nwp"] = rows[nwp_column].to_numpy(dtype=float)
    for name, values in forecasts.items():
        frame[name] = np.asarray(values, dtype=float)[idx]
    if climatology is not None:
        frame["climatology"] = climatology.predict(pd.Series(frame["valid_time"]))
    n_init = frame["issue_time"].nunique()
    notes = [f"{n_init} init times every {cycle_hours} h replayed in time order, "
             f"{frame['station'].nunique()} stations, {len(frame)} forecasts"]
    return Replay(frame, cycle_hours, notes)
