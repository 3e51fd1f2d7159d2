"""Live verification: forecasts joined with the observations that arrive after them.

:func:`join_forecasts` matches each logged forecast to the observation at its valid time
(input time + lead time), station (when both sides name one) and lead time.
:func:`score_windows` scores rolling windows with the same functions as verification
(:mod:`wxops.verify.scoring`, i.e. the ``scores`` package), so a live RMSE means what the
RMSE recorded at promotion means; :func:`score_probability_windows` does the same for a
probability version's Brier score and reliability (:mod:`wxops.verify.probabilistic`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from wxops.errors import MonitorError, VerificationError
from wxops.verify.score_table import lookup
from wxops.verify.scoring import categorical_scores, continuous_scores, worse_by_pct


def join_forecasts(preds: pd.DataFrame, obs: pd.DataFrame, *, target: str,
                   lead_time: int | None, features: list[str] | None = None) -> pd.DataFrame:
    """Pair every forecast with its observation.

    Args:
        preds: the long prediction table (:func:`wxops.monitor.inputs.read_prediction_log`).
        obs: observations (``time`` = valid time, the target, optional ``station``).
        target: the observed variable (visibility).
        lead_time: hours between the input time and the valid time (None: 0, a diagnosis).
        features: input columns to carry along with their observed values as ``<f>_obs``.

    The same valid time forecast more than once by one version (a retry, a replay) counts
    once: the latest forecast, as an operator would have used it.

    Returns:
        Columns ``valid_time, lead_time, model_version, forecast, obs`` (+ ``station``,
        the input features and ``<f>_obs``), sorted by valid time.
    """
    if preds.empty:
        raise MonitorError("the prediction log holds no forecast yet; nothing to verify")
    lead = int(lead_time or 0)
    fc = preds.copy()
    if "init_time" in fc.columns and "lead_time" in fc.columns:  # NWP MOS: a lead per row
        fc["lead_time"] = pd.to_numeric(fc["lead_time"])
        fc["valid_time"] = fc["init_time"] + pd.to_timedelta(fc["lead_time"], unit="h")
    else:
        fc["valid_time"] = fc["time"] + pd.Timedelta(hours=lead)
        fc["lead_time"] = lead
    keys = ["valid_time"]
    if "station" in fc.columns and "station" in obs.columns:
        fc["station"] = fc["station"].astype(str)
        keys.append("station")
    fc = fc.sort_values("received_at").drop_duplicates(
        subset=[*keys, "lead_time", "model_version"], keep="last")
    carried = [f for f in (features or []) if f in obs.columns and f != target]
    right = obs[[*(["time", "station"] if "station" in keys else ["time"]), target, *carried]]
    right = right.rename(columns={"time": "valid_time", target: "obs",
                                  **{f: f"{f}_obs" for f in carried}})
    right = right.dropna(subset=["obs"])
    joined = fc.merge(right, on=keys, how="inner")
    if joined.empty:
        raise MonitorError(
            "no overlap in valid time between forecasts "
            f"({fc['valid_time'].min()} .. {fc['valid_time'].max()}, lead time {lead} h) and "
            f"observations ({obs['time'].min()} .. {obs['time'].max()})"
            + ("; stations differ?" if "station" in keys else ""))
    return joined.sort_values("valid_time").reset_index(drop=True)


def window_ends(valid_time: pd.Series, *, window: pd.Timedelta, step: pd.Timedelta,
                max_windows: int) -> list[pd.Timestamp]:
    """Ends of rolling windows, every ``step`` back from the last valid time, newest last."""
    last = pd.Timestamp(valid_time.max())
    first = pd.Timestamp(valid_time.min())
    end = last.floor(step) + step if last != last.floor(step) else last
    ends: list[pd.Timestamp] = []
    while len(ends) < max_windows and end - window < last and end > first:
        ends.append(end)
        end = end - step
    return sorted(ends)


def score_windows(joined: pd.DataFrame, *, window: pd.Timedelta, step: pd.Timedelta,
                  max_windows: int, min_samples: int, thresholds: list[float],
                  event: str, cap: float | None = None) -> pd.DataFrame:
    """Scores of each rolling window ``(end - window, end]`` of joined pairs.

    One row per window end (index ``window_end``) and ``model_version`` (the version with
    the most pairs in the window). Windows with fewer than ``min_samples`` pairs are kept
    with ``n`` only, so a gap in the observations shows as a gap, not as a score.
    ``cap`` (``verify.cap``) is applied to forecasts and observations alike, as at
    promotion, so live and promotion scores compare like with like.
    """
    from wxops.verify.references import cap_values

    rows: list[dict[str, Any]] = []
    times = joined["valid_time"]
    for end in window_ends(times, window=window, step=step, max_windows=max_windows):
        part = joined[(times > end - window) & (times <= end)]
        version = str(part["model_version"].mode().iloc[0]) if len(part) else ""
        part = part[part["model_version"] == version]
        row: dict[str, Any] = {"window_end": end, "model_version": version, "n": float(len(part))}
        if len(part) >= min_samples:
            f = cap_values(part["forecast"], cap)
            o = cap_values(part["obs"], cap)
            try:
                row.update(continuous_scores(f, o))
                row.update(categorical_scores(f, o, thresholds=thresholds, event=event))
            except VerificationError as exc:
                raise MonitorError(f"window ending {end}: {exc}") from exc
        rows.append(row)
    return pd.DataFrame(rows).set_index("window_end") if rows else pd.DataFrame(
        columns=["model_version", "n"]).rename_axis("window_end")


def score_probability_windows(joined: pd.DataFrame, columns: dict[str, tuple[str, float]], *,
                              window: pd.Timedelta, step: pd.Timedelta, max_windows: int,
                              min_samples: int, calibration_lag_hours: float | None = None
                              ) -> pd.DataFrame:
    """Rolling-window scores of a probability version: per threshold ``t`` the Brier
    score ``brier_<t>``, the reliability term of its decomposition ``reliability_<t>``
    and the observed ``events_<t>``, by :func:`wxops.verify.probabilistic.brier_scores`
    (the ``scores`` package), as verified at promotion; with ``calibration_lag_hours``
    also the p-value of the calibration test ``calibration_<t>``, the events the forecasts
    expect ``forecast_events_<t>`` and the Brier score of reliable forecasts
    ``expected_brier_<t>``. ``columns`` is
    :func:`wxops.monitor.inputs.probability_columns` of the table.
    """
    from wxops.verify.probabilistic import brier_scores, calibration_test, event_indicator
    from wxops.verify.score_table import threshold_label

    rows: list[dict[str, Any]] = []
    times = joined["valid_time"]
    for end in window_ends(times, window=window, step=step, max_windows=max_windows):
        part = joined[(times > end - window) & (times <= end)]
        version = str(part["model_version"].mode().iloc[0]) if len(part) else ""
        part = part[part["model_version"] == version].dropna(subset=list(columns))
        row: dict[str, Any] = {"window_end": end, "model_version": version, "n": float(len(part))}
        if len(part) >= min_samples:
            part = part.sort_values("valid_time")  # the calibration test reads time order
            obs = part["obs"].to_numpy(dtype=float)
            lag = (None if calibration_lag_hours is None
                   else _lag_cases(part["valid_time"], calibration_lag_hours))
            for column, (event, threshold) in columns.items():
                events = event_indicator(obs, threshold, event)
                prob = part[column].to_numpy(dtype=float)
                label = threshold_label(threshold)
                try:
                    found = brier_scores(prob, events, climatology=float(events.mean()))
                    row.update({f"brier_{label}": found["brier"],
                                f"reliability_{label}": found["reliability"],
                                f"events_{label}": found["events"]})
                    if lag is not None:
                        test = calibration_test(prob, events, lag=lag)
                        row.update({f"calibration_{label}": test.p_value,
                                    f"forecast_events_{label}": test.forecast_events,
                                    f"expected_brier_{label}": test.expected_brier})
                except VerificationError as exc:
                    raise MonitorError(f"window ending {end}, {column}: {exc}") from exc
        rows.append(row)
    return pd.DataFrame(rows).set_index("window_end") if rows else pd.DataFrame(
        columns=["model_version", "n"]).rename_axis("window_end")


def _lag_cases(valid_time: pd.Series, hours: float) -> int:
    """``hours`` as a number of cases at the window's typical spacing (hourly: the same)."""
    spacing = pd.Series(np.sort(valid_time.to_numpy())).diff().median()
    if pd.isna(spacing) or spacing <= pd.Timedelta(0):
        return 0
    return int(np.ceil(pd.Timedelta(hours=hours) / spacing))


def _calibration_detail(rec: pd.Series, label: str) -> str:
    """The calibration test's evidence in a window, in the terms a forecaster checks."""
    keys = (f"forecast_events_{label}", f"events_{label}", f"brier_{label}",
            f"expected_brier_{label}")
    values = [float(rec.get(k, np.nan)) for k in keys]
    if not all(np.isfinite(values)):
        return ""
    expected, events, brier, reliable = values
    return (f"{expected:.1f} events forecast, {events:.0f} observed; Brier score {brier:.4f} "
            f"vs {reliable:.4f} for reliable forecasts")


def promotion_probability_scores(metrics: dict[str, float],
                                 thresholds: list[float]) -> dict[str, float]:
    """A probability version's Brier score and reliability per threshold at promotion:
    the test-block verification the pipeline logs to its run (``test_brier_1000``...)."""
    from wxops.verify.score_table import threshold_label

    out: dict[str, float] = {}
    for threshold in thresholds:
        label = threshold_label(threshold)
        for name in ("brier", "reliability"):
            value = metrics.get(f"test_{name}_{label}")
            if value is not None and np.isfinite(value):
                out[f"{name}_{label}"] = float(value)
    return out


def probability_breaches(scores: pd.DataFrame, rules: list[Any], thresholds: list[float],
                         promoted: dict[str, float]) -> pd.DataFrame:
    """:func:`breaches` for a probability version: each rule (``monitor.probability_rules``)
    on each threshold's score, against its promotion value (lower is better for both);
    a ``calibration`` rule breaches where its test rejects reliability at ``alpha``."""
    from wxops.verify.score_table import threshold_label

    rows = []
    for rule in rules:
        for threshold in thresholds:
            score = f"{rule.score}_{threshold_label(threshold)}"
            reference = None if rule.score == "calibration" else promoted.get(score)
            for end, rec in scores.iterrows():
                value = float(rec.get(score, np.nan))
                worse = float("nan")
                breached = False
                if rule.score == "calibration":
                    # p-value of the calibration test; no promotion value: reliable is the null
                    breached = bool(not np.isnan(value) and value < rule.alpha)
                elif np.isfinite(value) and reference is not None:
                    worse = (100.0 * (value - reference) / reference if reference > 0
                             else float("inf") if value > 0 else 0.0)
                    breached = bool(
                        (rule.max_worse_pct is not None and worse > rule.max_worse_pct)
                        or (rule.max_increase is not None
                            and value - reference > rule.max_increase))
                elif np.isfinite(value) and rule.limit is not None:
                    breached = value > rule.limit
                rows.append({"window_end": end, "score": score, "value": value,
                             "promotion": np.nan if reference is None else reference,
                             "worse_pct": worse,
                             "max_worse_pct": (np.nan if rule.max_worse_pct is None
                                               else rule.max_worse_pct),
                             "max_increase": (np.nan if rule.max_increase is None
                                              else rule.max_increase),
                             "alpha": rule.alpha if rule.score == "calibration" else np.nan,
                             "detail": (_calibration_detail(rec, threshold_label(threshold))
                                        if rule.score == "calibration" else ""),
                             "breached": breached})
    return pd.DataFrame(rows)


def promotion_scores(verification: dict[str, Any] | None) -> dict[str, float]:
    """Scores of the version itself recorded when it was verified for promotion.

    ``verification`` is the ``verification.json`` that ``wxops promote``/``verify`` logs
    to the version's run; its test-block scores of source ``candidate`` (every hour of the
    held-out blocks: the closest match to a live stream of hourly forecasts) are used.
    """
    if not verification:
        return {}
    block = verification.get("test_block") or {}
    for record in block.get("scores", []):
        if record.get("source") == "candidate":
            return {k: float(v) for k, v in record.items()
                    if k != "source" and isinstance(v, int | float) and np.isfinite(v)}
    return {}


def breaches(scores: pd.DataFrame, rules: list[Any], promoted: dict[str, float]) -> pd.DataFrame:
    """For each rule and window: live value, promotion value, limit and breach flag.

    A rule on a score the windows lack (e.g. ``ets_300`` without that threshold in
    ``verify.thresholds``) raises MonitorError naming it.
    """
    rows = []
    for rule in rules:
        if not scores.empty and rule.score not in scores.columns and "rmse" in scores.columns:
            raise MonitorError(f"monitor.live_rules: unknown score '{rule.score}' (have "
                               f"{sorted(c for c in scores.columns if c not in ('n', 'model_version'))})")
        reference = promoted.get(rule.score)
        for end, rec in scores.iterrows():
            value = float(rec.get(rule.score, np.nan))
            if not np.isfinite(value):
                breached = False
                worse = float("nan")
            elif reference is not None:
                worse = worse_by_pct(rule.score, value, reference)
                breached = bool(worse > rule.max_worse_pct)
            elif rule.limit is not None:
                worse = float("nan")
                entry = lookup(rule.score)
                if entry is None:
                    raise MonitorError(f"monitor.live_rules: unknown score '{rule.score}'")
                breached = entry.breaches_limit(value, rule.limit)
            else:
                worse, breached = float("nan"), False
            rows.append({"window_end": end, "score": rule.score, "value": value,
                         "promotion": np.nan if reference is None else reference,
                         "worse_pct": worse, "max_worse_pct": rule.max_worse_pct,
                         "breached": breached})
    return pd.DataFrame(rows)


def sustained(flags: list[bool], windows: int) -> bool:
    """True when the last ``windows`` flags are all set (a breach that stays)."""
    return len(flags) >= windows and all(flags[-windows:])
