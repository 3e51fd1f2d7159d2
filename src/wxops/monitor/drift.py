"""Input drift per feature: PSI and the KS statistic, with a season-aware baseline.

Two comparisons per feature, both with the same two statistics:

``training``
    The served inputs of a window against the training data of the serving version,
    as anomalies from a seasonal-diurnal mean fitted on that training data (annual and
    daily harmonics and their interaction), taken from training rows of the same hours
    of day and the same months (the nearest months, when the training data lacks a
    month: a TMY split holds test months out entirely). The normal march of the seasons
    therefore cancels. The alert threshold of each feature is calibrated on the training
    data itself: the largest PSI that its own windows of the same length show against
    the rest, times a margin. Weather within a week easily moves a distribution by more
    than a 3 K sensor bias, so this catches gross faults (a unit change, a stuck or dead
    sensor) rather than subtle biases.
``observed``
    The served inputs against the observations of the same variable at the same valid
    times, where the observation files carry it. Season and weather are identical on
    both sides, so a bias of one feed (a +3 K temperature sensor, an NWP input that
    drifted from the observed climate the perfect-prognosis model was trained on)
    stands out and names its feature.

PSI is written here (ten lines; quantile bins of the baseline, empty bins floored at
1e-4); the KS statistic is ``scipy.stats.ks_2samp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from wxops.errors import MonitorError

_FLOOR = 1e-4


def psi(live: np.ndarray, baseline: np.ndarray, *, bins: int = 10) -> float:
    """Population stability index of ``live`` against ``baseline`` (quantile bins)."""
    live = live[np.isfinite(live)]
    baseline = baseline[np.isfinite(baseline)]
    if live.size == 0 or baseline.size == 0:
        return float("nan")
    cuts = np.unique(np.quantile(baseline, np.linspace(0.0, 1.0, bins + 1)))
    if cuts.size > 2:
        cuts = cuts[1:-1]  # the outer bins reach to -inf and +inf
    elif cuts.size == 1:  # a constant baseline: its value gets a bin of its own
        cuts = np.array([cuts[0], np.nextafter(cuts[0], np.inf)])
    edges = np.concatenate([[-np.inf], cuts, [np.inf]])
    p_live = np.clip(np.histogram(live, edges)[0] / live.size, _FLOOR, None)
    p_base = np.clip(np.histogram(baseline, edges)[0] / baseline.size, _FLOOR, None)
    return float(np.sum((p_live - p_base) * np.log(p_live / p_base)))


def ks_statistic(live: np.ndarray, baseline: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the two ECDFs)."""
    live = live[np.isfinite(live)]
    baseline = baseline[np.isfinite(baseline)]
    if live.size == 0 or baseline.size == 0:
        return float("nan")
    return float(ks_2samp(live, baseline).statistic)


def _design(time: pd.Series) -> np.ndarray:
    t = pd.to_datetime(time)
    doy = 2 * np.pi * t.dt.day_of_year.to_numpy(dtype=float) / 365.25
    hour = 2 * np.pi * (t.dt.hour.to_numpy(dtype=float) + t.dt.minute.to_numpy() / 60) / 24
    cols = [np.ones(len(t)), np.sin(doy), np.cos(doy)]
    for k in (1, 2):
        cols += [np.sin(k * hour), np.cos(k * hour)]
    cols += [np.sin(doy) * np.sin(hour), np.sin(doy) * np.cos(hour),
             np.cos(doy) * np.sin(hour), np.cos(doy) * np.cos(hour)]
    return np.column_stack(cols)


def _circular(a: np.ndarray, b: int, period: int) -> np.ndarray:
    d = np.abs(a - b) % period
    return np.minimum(d, period - d)


def naive_utc(time: pd.Series) -> pd.Series:
    """Times as naive UTC (the convention of the model input and the prediction log)."""
    t = pd.to_datetime(time)
    if getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    return t


@dataclass
class SeasonalBaseline:
    """Training data of one model version, reduced to what drift needs.

    Fitted with :meth:`fit`; ``anomalies_`` holds the training values minus their
    seasonal-diurnal mean, ``thresholds_`` the calibrated PSI alert level per feature
    for windows of ``window_hours``.
    """

    features: list[str]
    month_window: int = 1
    hour_window: int = 1
    min_rows: int = 200
    bins: int = 10
    coef_: dict[str, np.ndarray] = field(default_factory=dict)
    anomalies_: dict[str, np.ndarray] = field(default_factory=dict)
    months_: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    hours_: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    thresholds_: dict[str, float] = field(default_factory=dict)
    window_hours: float = 0.0

    def fit(self, train: pd.DataFrame, *, window_hours: float, margin: float = 1.25) -> SeasonalBaseline:
        """Fit the seasonal-diurnal means and calibrate the per-feature PSI thresholds."""
        missing = [f for f in self.features if f not in train.columns]
        if missing:
            raise MonitorError(f"feature(s) {missing} are not in the training data of the "
                               f"serving version (it has {sorted(train.columns)})")
        data = train.assign(time=naive_utc(train["time"])).sort_values("time").reset_index(drop=True)
        design = _design(data["time"])
        for name in self.features:
            values = data[name].to_numpy(dtype=float)
            ok = np.isfinite(values)
            coef, *_ = np.linalg.lstsq(design[ok], values[ok], rcond=None)
            self.coef_[name] = coef
            self.anomalies_[name] = values - design @ coef
        self.months_ = data["time"].dt.month.to_numpy()
        self.hours_ = data["time"].dt.hour.to_numpy()
        self.window_hours = window_hours
        self.thresholds_ = self._calibrate(data["time"], window_hours, margin)
        return self

    def _select(self, months: np.ndarray, hours: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """Training rows of the same hours and nearest months (widened until enough rows)."""
        hour_ok = np.zeros(self.hours_.size, dtype=bool)
        for h in np.unique(hours):
            hour_ok |= _circular(self.hours_, int(h), 24) <= self.hour_window
        for width in range(self.month_window, 7):
            month_ok = np.zeros(self.months_.size, dtype=bool)
            for m in np.unique(months):
                month_ok |= _circular(self.months_ - 1, int(m) - 1, 12) <= width
            mask = month_ok & hour_ok
            if exclude is not None:
                mask &= ~exclude
            if mask.sum() >= self.min_rows:
                return mask
        return hour_ok if exclude is None else hour_ok & ~exclude

    def _calibrate(self, time: pd.Series, window_hours: float, margin: float) -> dict[str, float]:
        """Largest PSI of the training data's own windows against the rest, times margin."""
        t = time.to_numpy()
        start, end = t[0], t[-1]
        width = np.timedelta64(int(window_hours * 3600), "s")
        step = width // 2 if width > np.timedelta64(0, "s") else width
        worst = dict.fromkeys(self.features, 0.0)
        cursor = start
        while cursor + width <= end + np.timedelta64(1, "s"):
            inside = (t >= cursor) & (t < cursor + width)
            if inside.sum() >= max(12, int(0.5 * window_hours)):
                base = self._select(self.months_[inside], self.hours_[inside], exclude=inside)
                for name in self.features:
                    value = psi(self.anomalies_[name][inside], self.anomalies_[name][base], bins=self.bins)
                    if np.isfinite(value):
                        worst[name] = max(worst[name], value)
            cursor = cursor + step
        return {name: max(value, 0.1) * margin for name, value in worst.items()}

    def anomalies(self, live: pd.DataFrame, name: str) -> np.ndarray:
        """``live[name]`` minus the training seasonal-diurnal mean at the live times."""
        return live[name].to_numpy(dtype=float) - _design(live["time"]) @ self.coef_[name]

    def compare(self, live: pd.DataFrame) -> pd.DataFrame:
        """PSI, KS and the calibrated threshold of each feature for one window of inputs."""
        t = naive_utc(live["time"])
        live = live.assign(time=t)
        base = self._select(t.dt.month.to_numpy(), t.dt.hour.to_numpy())
        rows = []
        for name in self.features:
            a = self.anomalies(live, name)
            b = self.anomalies_[name][base]
            rows.append({"feature": name, "baseline": "training", "psi": psi(a, b, bins=self.bins),
                         "ks": ks_statistic(a, b), "threshold": self.thresholds_[name],
                         "n": int(np.isfinite(a).sum()), "n_baseline": int(np.isfinite(b).sum())})
        return pd.DataFrame(rows)


def compare_with_observed(joined: pd.DataFrame, features: list[str], *, bins: int = 10,
                          psi_threshold: float = 0.2) -> pd.DataFrame:
    """PSI and KS of served inputs against the observed values at the same valid times.

    ``joined`` holds each input column and its observation as ``<name>_obs`` (features
    the observation files do not carry are skipped).
    """
    rows = []
    for name in features:
        obs_col = f"{name}_obs"
        if name not in joined.columns or obs_col not in joined.columns:
            continue
        a = joined[name].to_numpy(dtype=float)
        b = joined[obs_col].to_numpy(dtype=float)
        ok = np.isfinite(a) & np.isfinite(b)
        rows.append({"feature": name, "baseline": "observed", "psi": psi(a[ok], b[ok], bins=bins),
                     "ks": ks_statistic(a[ok], b[ok]), "threshold": psi_threshold,
                     "n": int(ok.sum()), "n_baseline": int(ok.sum()),
                     "mean_departure": float(np.mean(a[ok] - b[ok])) if ok.any() else float("nan")})
    return pd.DataFrame(rows)
