"""Scores of one forecast against observations, computed by the ``scores`` package.

No score is re-implemented here: these functions only put arrays into the shape
``scores`` expects (an ``xarray.DataArray`` over a named ``time`` dimension) and collect
its results into flat dictionaries, so every score carries a stable name such as
``rmse`` or ``ets_1000`` that gate rules and reports refer to.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from wxops.config import CATEGORICAL_SCORES, threshold_label
from wxops.errors import VerificationError

#: Value of a perfect forecast, for the skill formula (None: no skill defined).
PERFECT: dict[str, float | None] = {
    "mae": 0.0, "rmse": 0.0, "bias": None, "correlation": 1.0,
    "pod": 1.0, "far": 0.0, "csi": 1.0, "ets": 1.0, "pss": 1.0, "frequency_bias": None,
    "crps": 0.0, "brier": 0.0,
}
#: Scores where a larger value is better.
POSITIVE: frozenset[str] = frozenset({"correlation", "pod", "csi", "ets", "pss"})
#: Contingency counts reported next to the categorical scores, in table order.
COUNTS: tuple[str, ...] = ("hits", "misses", "false_alarms", "correct_negatives")


def base_score(name: str) -> str:
    """``ets_1000`` -> ``ets``; ``rmse`` -> ``rmse``."""
    for score in sorted(PERFECT, key=len, reverse=True):
        if name == score or name.startswith(score + "_"):
            return score
    return name


def _as_arrays(fcst: Any, obs: Any) -> tuple[xr.DataArray, xr.DataArray]:
    f = np.asarray(fcst, dtype=float)
    o = np.asarray(obs, dtype=float)
    if f.shape != o.shape or f.ndim != 1:
        raise VerificationError(
            f"forecast and observations must be 1-D of equal length, got {f.shape} and {o.shape}"
        )
    keep = np.isfinite(f) & np.isfinite(o)
    if not keep.any():
        raise VerificationError("no pair of finite forecast and observation to verify")
    return xr.DataArray(f[keep], dims="time"), xr.DataArray(o[keep], dims="time")


def continuous_scores(fcst: Any, obs: Any) -> dict[str, float]:
    """MAE, RMSE, additive bias (mean forecast - obs) and Pearson correlation.

    Pairs with a missing forecast or observation are left out.
    """
    import scores.continuous as sc

    f, o = _as_arrays(fcst, obs)
    out = {
        "mae": float(sc.mae(f, o)),
        "rmse": float(sc.rmse(f, o)),
        "bias": float(sc.additive_bias(f, o)),
        "correlation": float(sc.correlation.pearsonr(f, o)) if f.size > 1 else float("nan"),
        "n": float(f.size),
    }
    return out


def event_operator(event: str) -> Callable[[Any, Any], Any]:
    """``below`` -> ``<`` (low visibility is the event), ``above`` -> ``>=``."""
    if event == "below":
        return operator.lt
    if event == "above":
        return operator.ge
    raise VerificationError(f"event must be 'below' or 'above', got {event!r}")


def categorical_scores(
    fcst: Any, obs: Any, *, thresholds: list[float], event: str = "below"
) -> dict[str, float]:
    """POD, FAR, CSI, ETS, Peirce skill score (PSS), frequency bias and the contingency
    counts at each threshold.

    Names carry the threshold, e.g. ``pod_1000``, ``hits_1000``. A score whose
    denominator is zero (no event observed or forecast) is NaN, as ``scores`` gives it.
    """
    from scores.categorical import ThresholdEventOperator

    f, o = _as_arrays(fcst, obs)
    op = event_operator(event)
    out: dict[str, float] = {}
    for threshold in thresholds:
        label = threshold_label(threshold)
        table = ThresholdEventOperator(default_event_threshold=threshold, default_op_fn=op)
        manager = table.make_contingency_manager(f, o)
        counts = manager.get_counts()
        values = {
            "pod": manager.probability_of_detection(),
            "far": manager.false_alarm_ratio(),
            "csi": manager.threat_score(),
            "ets": manager.equitable_threat_score(),
            "pss": manager.peirce_skill_score(),
            "frequency_bias": manager.frequency_bias(),
        }
        for name in (c for c in CATEGORICAL_SCORES if c in values):
            out[f"{name}_{label}"] = float(values[name])
        out[f"hits_{label}"] = float(counts["tp_count"])
        out[f"misses_{label}"] = float(counts["fn_count"])
        out[f"false_alarms_{label}"] = float(counts["fp_count"])
        out[f"correct_negatives_{label}"] = float(counts["tn_count"])
    return out


def undefined_reason(score: str, *, hits: float, misses: float, false_alarms: float,
                     correct_negatives: float) -> str | None:
    """Why a categorical score is undefined (its denominator is zero) for these counts,
    in words for a report ("no forecasts of the event"); None when it is defined."""
    observed = hits + misses
    forecast = hits + false_alarms
    n = observed + false_alarms + correct_negatives
    base = base_score(score)
    if base in ("pod", "frequency_bias", "pss") and observed == 0:
        return "no observed events"
    if base == "pss" and false_alarms + correct_negatives == 0:
        return "every case is an event (no non-event to judge false alarms on)"
    if base == "far" and forecast == 0:
        return "no forecasts of the event"
    if base in ("csi", "ets") and observed + false_alarms == 0:
        return "no observed or forecast events"
    if base == "ets" and n > 0:
        random_hits = observed * forecast / n
        if hits + misses + false_alarms - random_hits == 0:
            return "every case is an event (no skill measurable against chance)"
    return None


def crps_of_quantiles(quantiles: Any, obs: Any) -> float:
    """CRPS of forecasts given as equally weighted quantiles/members (``n x m`` array).

    Uses ``scores.probability.crps_for_ensemble`` (empirical CDF of the members).
    """
    from scores.probability import crps_for_ensemble

    q = np.asarray(quantiles, dtype=float)
    o = np.asarray(obs, dtype=float)
    if q.ndim != 2 or q.shape[0] != o.shape[0]:
        raise VerificationError(
            f"quantile forecasts must be (n_times, n_quantiles) with n_times={o.shape[0]}, "
            f"got {q.shape}"
        )
    fcst = xr.DataArray(q, dims=("time", "member"))
    return float(crps_for_ensemble(fcst, xr.DataArray(o, dims="time"), "member"))


def brier(prob: Any, obs_event: Any) -> float:
    """Brier score of event probabilities in [0, 1] against observed events (0/1)."""
    from scores.probability import brier_score

    p = np.asarray(prob, dtype=float)
    e = np.asarray(obs_event, dtype=float)
    if p.shape != e.shape:
        raise VerificationError(f"probabilities {p.shape} and events {e.shape} differ in shape")
    if np.any((p < 0) | (p > 1)):
        raise VerificationError("probabilities must lie in [0, 1]")
    if not np.isin(e, (0.0, 1.0)).all():
        raise VerificationError("observed events must be 0 or 1")
    return float(brier_score(xr.DataArray(p, dims="time"), xr.DataArray(e, dims="time")))


def skill(score: str, value: float, reference: float) -> float | None:
    """Skill of ``value`` against ``reference`` for ``score``.

    ``(value - reference) / (perfect - reference)``, which for error scores (perfect 0)
    is ``1 - score/score_reference``. None where no skill is defined (bias, frequency
    bias) or the reference is already perfect.
    """
    perfect = PERFECT.get(base_score(score))
    if perfect is None or not np.isfinite(value) or not np.isfinite(reference):
        return None
    if reference == perfect:
        return None
    return float((value - reference) / (perfect - reference))


def worse_by_pct(score: str, value: float, reference: float) -> float:
    """How many percent ``value`` is worse than ``reference`` (negative: better)."""
    if not np.isfinite(value) or not np.isfinite(reference):
        return float("nan")
    diff = reference - value if base_score(score) in POSITIVE else value - reference
    if reference == 0:
        return 0.0 if diff == 0 else float("inf") * np.sign(diff)
    return float(100.0 * diff / abs(reference))
