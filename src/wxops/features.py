"""Derived meteorological predictors and the lead-time (forecast) table.

:class:`MeteoFeatures` is a stateless scikit-learn transformer, so it travels inside the
logged model and a served model derives the same features from the same raw inputs.
:func:`build_features` turns the QC'd observations into the modelling table; in lead-time
mode every shifted value is looked up by time *within its block*, so neither the target
at t+h nor a lag ever crosses a block boundary (TMY months come from different years).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from wxops.config import LEAKING_COLUMNS, FeaturesConfig
from wxops.errors import FeatureError

TARGET = "y"
"""Name of the target column in the feature table."""


#: Derived predictors :func:`derive_features` knows (``features.derived`` in the config).
DERIVED_FEATURES: tuple[str, ...] = ("dewpoint_depression", "wind_components", "cyclic_time",
                                     "station_onehot")

_Values = TypeVar("_Values", np.ndarray, pd.Series)


def relative_humidity(t2m: _Values, td2m: _Values) -> _Values:
    """Relative humidity (%) from temperature and dew point (degC), Magnus formula."""
    a, b = 17.625, 243.04  # Alduchov & Eskridge (1996)
    return np.minimum(100.0 * np.exp(a * td2m / (b + td2m) - a * t2m / (b + t2m)), 100.0)


def derive_features(
    columns: Mapping[str, np.ndarray], derived: Collection[str], *, stations: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """The model's input columns from raw observation columns: the one implementation of
    the feature maths, used by training (:class:`MeteoFeatures`) and by the serving fast
    path (``wxops.serve.fastpath``), so the two cannot drift apart.

    Args:
        columns: raw columns as 1-D arrays; ``time`` as naive UTC ``datetime64``,
            ``station`` as station ids.
        derived: names from :data:`DERIVED_FEATURES` (see :class:`MeteoFeatures`).
        stations: the training stations (one 0/1 column each with ``station_onehot``).

    Returns:
        The columns in their order without ``time``, ``wind_dir`` replaced by ``wind_u``
        and ``wind_v``, ``station`` by its one-hot columns, derived ones appended and a
        missing ``rh`` filled from ``t2m`` and ``td2m``.
    """
    out = {name: values for name, values in columns.items() if name != "time"}
    if "t2m" in out and "td2m" in out:
        rh = out.get("rh")
        if rh is None:
            out["rh"] = relative_humidity(out["t2m"], out["td2m"])
        elif np.isnan(rh).any():  # served inputs have none: the exponentials are skipped
            out["rh"] = np.where(np.isnan(rh), relative_humidity(out["t2m"], out["td2m"]), rh)
    if "dewpoint_depression" in derived:
        out["dewpoint_depression"] = out["t2m"] - out["td2m"]
    if "wind_components" in derived:
        rad = np.deg2rad(out.pop("wind_dir"))
        # Meteorological convention: direction the wind blows *from*.
        speed = -out["wind_speed"]
        out["wind_u"] = speed * np.sin(rad)
        out["wind_v"] = speed * np.cos(rad)
    if "cyclic_time" in derived:
        hour, doy = _hour_and_day_of_year(columns["time"])
        day_angle = 2 * np.pi * hour / 24.0
        year_angle = 2 * np.pi * doy / 365.25
        out["hour_sin"] = np.sin(day_angle)
        out["hour_cos"] = np.cos(day_angle)
        out["doy_sin"] = np.sin(year_angle)
        out["doy_cos"] = np.cos(year_angle)
    if "station_onehot" in derived:
        # One column per training station (a per-station bias for linear MOS); a
        # station not seen in training gets zeros: the all-station mean.
        station = np.asarray(out.pop("station")).astype(str)
        for name in stations:
            out[f"station={name}"] = (station == name).astype(np.float64)
    return out


def _hour_and_day_of_year(time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day (minutes as a fraction, seconds ignored) and day of year (1-366) of
    naive UTC ``datetime64`` values; NaN for NaT."""
    missing = np.isnat(time)
    any_missing = bool(missing.any())
    if any_missing:
        time = np.where(missing, np.datetime64(0, "s").astype(time.dtype), time)
    day = time.astype("datetime64[D]")
    minutes = (time - day) // np.timedelta64(1, "m")
    hour = (minutes // 60) + (minutes % 60) / 60.0
    doy = (day - time.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1
    if any_missing:
        return np.where(missing, np.nan, hour), np.where(missing, np.nan, doy)
    return hour, doy


class MeteoFeatures(TransformerMixin, BaseEstimator):
    """Add derived predictors to a frame of raw surface observations.

    Args:
        derived: any of ``dewpoint_depression`` (t2m - td2m), ``wind_components``
            (u, v from speed and direction, replacing the direction's 0/360 jump) and
            ``cyclic_time`` (sin/cos of hour of day and day of year from ``time``) and
            ``station_onehot`` (one 0/1 column per training station, for NWP MOS).
            Missing ``rh`` is always filled from t2m and td2m when both are present.
    """

    def __init__(self, derived: Sequence[str] = ("dewpoint_depression",)) -> None:
        self.derived = derived

    def fit(self, X: pd.DataFrame, y: object = None) -> MeteoFeatures:
        unknown = set(self.derived) - set(DERIVED_FEATURES)
        if unknown:
            raise FeatureError(f"unknown derived features {sorted(unknown)}")
        self._check_inputs(X)
        if "station_onehot" in self.derived:
            self.stations_ = sorted({str(s) for s in X["station"]})
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check_inputs(X)
        columns = {name: X[name].to_numpy() for name in X.columns}
        if "cyclic_time" in self.derived:  # any time zone (or none: UTC) -> naive UTC
            columns["time"] = pd.to_datetime(X["time"], utc=True).dt.tz_localize(None).to_numpy()
        out = derive_features(columns, self.derived, stations=getattr(self, "stations_", ()))
        return pd.DataFrame(out, index=X.index).astype("float64")

    def _check_inputs(self, X: pd.DataFrame) -> None:
        need: set[str] = set()
        if "dewpoint_depression" in self.derived:
            need |= {"t2m", "td2m"}
        if "wind_components" in self.derived:
            need |= {"wind_speed", "wind_dir"}
        if "cyclic_time" in self.derived:
            need |= {"time"}
        if "station_onehot" in self.derived:
            need |= {"station"}
        missing = sorted(need - set(X.columns))
        if missing:
            raise FeatureError(f"derived features {list(self.derived)} need columns {missing}")


@dataclass(frozen=True)
class FeatureTable:
    """The modelling table: ``time``, ``block``, the model's input columns and ``y``."""

    frame: pd.DataFrame
    inputs: list[str]
    target: str
    lead_time: int | None
    rows_dropped_missing: int = 0
    notes: list[str] = field(default_factory=list)


def build_features(obs: pd.DataFrame, cfg: FeaturesConfig, *, block_col: str = "block") -> FeatureTable:
    """Assemble inputs and target; in lead-time mode shift within blocks only."""
    leaks = sorted(set(cfg.predictors) & set(LEAKING_COLUMNS))
    if leaks:
        raise FeatureError(f"{leaks} leak the target and cannot be predictors")
    missing = sorted({cfg.target, *cfg.predictors} - set(obs.columns))
    if missing:
        raise FeatureError(f"observations lack columns {missing} (features.predictors/target)")
    if block_col not in obs.columns:
        raise FeatureError(f"observations lack the '{block_col}' column; the split assigns it")
    base = obs[["time", block_col, *cfg.predictors]].copy()
    inputs = list(cfg.predictors)
    if cfg.lead_time is None:
        base[TARGET] = obs[cfg.target]
    else:
        current = obs[["time", block_col, cfg.target]]
        base[cfg.target] = obs[cfg.target]
        inputs.append(cfg.target)
        base[TARGET] = _shifted(base[["time", block_col]], current, block_col, -cfg.lead_time)[cfg.target]
        lag_source = obs[["time", block_col, *cfg.predictors, cfg.target]]
        for lag in cfg.lags:
            lagged = _shifted(base[["time", block_col]], lag_source, block_col, lag)
            for col in [*cfg.predictors, cfg.target]:
                name = f"{col}_lag{lag}h"
                base[name] = lagged[col].to_numpy()
                inputs.append(name)
    if "cyclic_time" in {*cfg.derived}:
        inputs = ["time", *inputs]
    before = len(base)
    check = [c for c in inputs if c != "time"] + [TARGET]
    base = base.dropna(subset=check).reset_index(drop=True)
    dropped = before - len(base)
    notes = []
    if dropped:
        notes.append(f"{dropped} rows without a complete input/target dropped before training")
    if base.empty:
        raise FeatureError("no row has every input and the target; check data and lags")
    return FeatureTable(base, inputs, cfg.target, cfg.lead_time, dropped, notes)


def _shifted(keys: pd.DataFrame, source: pd.DataFrame, block_col: str, hours: int) -> pd.DataFrame:
    """Values of ``source`` at ``time - hours`` in the same block, aligned to ``keys``."""
    moved = source.copy()
    moved["time"] = moved["time"] + pd.Timedelta(hours=hours)
    moved = moved.drop_duplicates(subset=["time", block_col])
    return keys.merge(moved, on=["time", block_col], how="left", validate="many_to_one")
