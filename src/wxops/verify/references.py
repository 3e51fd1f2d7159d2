"""Reference forecasts a model must beat: climatology, persistence and raw NWP.

Climatology is learned from every row that is not test (training and validation), so it
never sees a test value yet uses all the data a forecaster would have had. With month
blocks interleaved between splits, a test month has no other month of its own; its
climatology then falls back to the neighbouring months (a 3-month seasonal window) at the
same hour, then to the hour alone, then to the overall mean, and the fitted table says
which level each (month, hour) came from. With several stations each has its own table.

Besides the mean (a deterministic forecast, which never forecasts a rare event) the
climatology holds the *event frequency* at each threshold: the probabilistic climatology
that categorical and probability scores (Brier) are judged against.

Visibility is reported up to a cap that changed over the years (16 km, 24 km, 32 km in
the Greensboro TMY3 year); values are capped at one common maximum
(:data:`VISIBILITY_CAP`, ``verify.cap``) before fitting, as every forecast and
observation is before verification, so no reference inherits a reporting era's bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wxops.errors import VerificationError

#: Common maximum of reported visibility in metres: 10 statute miles (16.1 km), what
#: ASOS/METAR stations report at most and the lowest cap found in the TMY3 data.
VISIBILITY_CAP = 16000.0


def cap_values(values: Any, cap: float | None) -> np.ndarray:
    """``values`` with everything above ``cap`` set to it (NaN stays NaN)."""
    a = np.asarray(values, dtype=float)
    return a if cap is None else np.where(a > cap, cap, a)


def event_column(threshold: float) -> str:
    """Column of the climatological event frequency at ``threshold`` (``p_1000``)."""
    return f"p_{threshold:g}"


@dataclass(frozen=True)
class Climatology:
    """Mean target and event frequencies by (month, hour), per station if several."""

    table: pd.DataFrame
    """Index (month 1-12, hour 0-23); columns ``value``, ``level`` (``month``,
    ``season``, ``hour`` or ``overall``), ``n`` (rows behind the cell) and one
    ``p_<threshold>`` per threshold. The first station's table when there are several."""
    stations: dict[Any, pd.DataFrame] = field(default_factory=dict)
    """Station id -> its table (empty for a single series)."""

    def _lookup(self, times: pd.Series, column: str, station: Any = None) -> np.ndarray:
        t = pd.to_datetime(pd.Series(np.asarray(times)), utc=True)
        index = pd.MultiIndex.from_arrays([t.dt.month, t.dt.hour])
        if not self.stations or station is None:
            return self.table[column].reindex(index).to_numpy(dtype=float)
        ids = np.asarray(station)
        out = np.full(len(t), np.nan)
        for sid, table in self.stations.items():
            mask = ids == sid
            if mask.any():
                out[mask] = table[column].reindex(index[mask]).to_numpy(dtype=float)
        return out

    def predict(self, times: pd.Series, station: Any = None) -> np.ndarray:
        """Climatological mean valid at each of ``times`` (UTC), at ``station`` if given."""
        return self._lookup(times, "value", station)

    def probability(self, times: pd.Series, threshold: float, station: Any = None) -> np.ndarray:
        """Climatological frequency of the event at ``threshold`` for each of ``times``."""
        column = event_column(threshold)
        if column not in self.table.columns:
            raise VerificationError(
                f"the climatology has no event frequency at {threshold:g} (fitted with "
                f"thresholds {[c[2:] for c in self.table.columns if c.startswith('p_')]})")
        return self._lookup(times, column, station)


def fit_climatology(
    train: pd.DataFrame,
    *,
    target: str = "y",
    valid_offset_hours: int = 0,
    thresholds: Sequence[float] = (),
    event: str = "below",
    cap: float | None = None,
    station_column: str | None = None,
) -> Climatology:
    """Climatology of ``target`` by month and hour of the non-test rows.

    Args:
        train: rows the climatology may see (training and validation), with ``time``
            (the issue time) and ``target``.
        target: column of the verifying observation.
        valid_offset_hours: lead time: the target is valid this many hours after ``time``,
            so the climatology is keyed by the valid time, as the forecast it replaces.
        thresholds: event thresholds whose climatological frequency is fitted too.
        event: ``below`` or ``above`` the threshold, as in ``verify.event``.
        cap: common maximum the target is capped at first (visibility: 16000 m).
        station_column: fit one table per value of this column when it has several.
    """
    if train.empty or target not in train.columns or "time" not in train.columns:
        raise VerificationError(
            f"climatology needs training rows with 'time' and '{target}' columns"
        )
    if event not in ("below", "above"):
        raise VerificationError(f"event must be 'below' or 'above', got {event!r}")
    valid = pd.to_datetime(train["time"], utc=True) + pd.Timedelta(hours=valid_offset_hours)
    frame = pd.DataFrame({"month": valid.dt.month.to_numpy(), "hour": valid.dt.hour.to_numpy(),
                          "y": cap_values(train[target], cap)})
    if station_column and station_column in train.columns \
            and train[station_column].nunique() > 1:
        frame["station"] = train[station_column].to_numpy()
    frame = frame.dropna(subset=["y"])
    if frame.empty:
        raise VerificationError("climatology: the training target is all missing")
    for threshold in thresholds:
        hit = frame["y"] < threshold if event == "below" else frame["y"] >= threshold
        frame[event_column(threshold)] = hit.astype(float)
    if "station" in frame.columns:
        tables = {sid: _fit_table(part) for sid, part in frame.groupby("station", sort=True)}
        return Climatology(next(iter(tables.values())), tables)
    return Climatology(_fit_table(frame))


def _fit_table(frame: pd.DataFrame) -> pd.DataFrame:
    values = [c for c in frame.columns if c == "y" or c.startswith("p_")]
    by_cell = frame.groupby(["month", "hour"])[values].mean()
    counts = frame.groupby(["month", "hour"]).size()
    by_hour = frame.groupby("hour")[values].mean()
    overall = frame[values].mean()
    rows = []
    for month in range(1, 13):
        window = {(month - 2) % 12 + 1, month, month % 12 + 1}
        near = frame[frame["month"].isin(window)]
        season = near.groupby("hour")[values].mean()
        season_n = near.groupby("hour").size()
        for hour in range(24):
            if (month, hour) in by_cell.index:
                cell, level, n = by_cell.loc[(month, hour)], "month", int(counts[(month, hour)])
            elif hour in season.index:
                cell, level, n = season.loc[hour], "season", int(season_n[hour])
            elif hour in by_hour.index:
                cell, level = by_hour.loc[hour], "hour"
                n = int((frame["hour"] == hour).sum())
            else:
                cell, level, n = overall, "overall", len(frame)
            rows.append({"month": month, "hour": hour, "value": float(cell["y"]),
                         "level": level, "n": n,
                         **{c: float(cell[c]) for c in values if c != "y"}})
    return pd.DataFrame(rows).set_index(["month", "hour"])


def persistence_forecast(
    test: pd.DataFrame, *, observed_column: str, lead_time: int | None
) -> np.ndarray:
    """Persistence: the last observation at issue time is the forecast for t + lead time.

    Only defined in lead-time mode, where the observation at issue time is an input.
    """
    if lead_time is None:
        raise VerificationError(
            "persistence needs lead-time mode (features.lead_time); in diagnostic mode "
            "the observation at the valid time is the target itself"
        )
    if observed_column not in test.columns:
        raise VerificationError(
            f"persistence needs the observed '{observed_column}' at issue time in the table"
        )
    return test[observed_column].to_numpy(dtype=float)


def nwp_forecast(test: pd.DataFrame, *, column: str) -> np.ndarray:
    """The raw NWP forecast of the target, taken as it is from ``column``."""
    if column not in test.columns:
        raise VerificationError(
            f"verify.nwp_column '{column}' is not in the test table (columns: "
            f"{sorted(test.columns)}); add it to features.predictors or unset verify.nwp_column"
        )
    return test[column].to_numpy(dtype=float)
