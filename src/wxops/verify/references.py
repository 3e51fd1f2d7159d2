"""Reference forecasts a model must beat: climatology, persistence and raw NWP.

Climatology is learned from the training block only, so it never sees a test value.
With month blocks interleaved between splits, a test month has no training data of its
own; its climatology then falls back to the neighbouring months (a 3-month seasonal
window) at the same hour, then to the hour alone, then to the training mean, and the
fitted table says which level each (month, hour) came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from wxops.errors import VerificationError


@dataclass(frozen=True)
class Climatology:
    """Mean target by (month, hour) and the fallback level each cell came from."""

    table: pd.DataFrame
    """Index (month 1-12, hour 0-23); columns ``value`` and ``level``
    (``month``, ``season``, ``hour`` or ``overall``)."""

    def predict(self, times: pd.Series) -> np.ndarray:
        """Climatological forecast valid at each of ``times`` (UTC)."""
        t = pd.to_datetime(times, utc=True)
        index = pd.MultiIndex.from_arrays([t.dt.month, t.dt.hour])
        return self.table["value"].reindex(index).to_numpy(dtype=float)


def fit_climatology(
    train: pd.DataFrame, *, target: str = "y", valid_offset_hours: int = 0
) -> Climatology:
    """Climatology of ``target`` by month and hour of the training rows.

    Args:
        train: training rows with ``time`` (the issue time) and ``target``.
        target: column of the verifying observation.
        valid_offset_hours: lead time: the target is valid this many hours after ``time``,
            so the climatology is keyed by the valid time, as the forecast it replaces.
    """
    if train.empty or target not in train.columns or "time" not in train.columns:
        raise VerificationError(
            f"climatology needs training rows with 'time' and '{target}' columns"
        )
    valid = pd.to_datetime(train["time"], utc=True) + pd.Timedelta(hours=valid_offset_hours)
    frame = pd.DataFrame({"month": valid.dt.month, "hour": valid.dt.hour,
                          "y": train[target].to_numpy(dtype=float)}).dropna()
    if frame.empty:
        raise VerificationError("climatology: the training target is all missing")
    by_cell = frame.groupby(["month", "hour"])["y"].mean()
    by_hour = frame.groupby("hour")["y"].mean()
    overall = float(frame["y"].mean())
    rows = []
    for month in range(1, 13):
        window = {(month - 2) % 12 + 1, month, month % 12 + 1}
        season = frame[frame["month"].isin(window)].groupby("hour")["y"].mean()
        for hour in range(24):
            if (month, hour) in by_cell.index:
                rows.append((month, hour, float(by_cell[(month, hour)]), "month"))
            elif hour in season.index:
                rows.append((month, hour, float(season[hour]), "season"))
            elif hour in by_hour.index:
                rows.append((month, hour, float(by_hour[hour]), "hour"))
            else:
                rows.append((month, hour, overall, "overall"))
    table = pd.DataFrame(rows, columns=["month", "hour", "value", "level"]).set_index(
        ["month", "hour"]
    )
    return Climatology(table)


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
