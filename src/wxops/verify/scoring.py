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

from wxops.errors import VerificationError
from wxops.verify.score_table import (
    COUNTS,
    SCORES,
    Counts,
    base_score,
    lookup,
    scores_of,
    threshold_label,
)

__all__ = ["COUNTS", "base_score", "brier", "categorical_scores", "contingency_manager", "continuous_scores",
           "crps_of_quantiles", "event_operator", "skill", "undefined_reason", "worse_by_pct"]


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
    """Every continuous score of the score table (MAE, RMSE, additive bias, Pearson
    correlation...) and ``n``, the pairs scored.

    Pairs with a missing forecast or observation are left out.
    """
    f, o = _as_arrays(fcst, obs)
    out: dict[str, float] = {}
    for score in scores_of("continuous", source="values"):
        # one pair has no spread: a correlation (or any score needing two) is undefined
        out[score.name] = (float(score.resolve()(f, o)) if f.size > 1 or score.name != "correlation"
                           else float("nan"))
    out["n"] = float(f.size)
    return out


def event_operator(event: str) -> Callable[[Any, Any], Any]:
    """``below`` -> ``<`` (low visibility is the event), ``above`` -> ``>=``."""
    if event == "below":
        return operator.lt
    if event == "above":
        return operator.ge
    raise VerificationError(f"event must be 'below' or 'above', got {event!r}")


def contingency_manager(f: np.ndarray, o: np.ndarray, thresholds: list[float],
                        op: Callable[[Any, Any], Any]) -> Any:
    """``scores``' contingency tables of finite 1-D pairs, one per threshold (dimension
    ``threshold``), for its scores.

    The four counts are summed here and handed to ``scores.categorical.BasicContingencyManager``,
    which computes every score from them exactly as the ``BinaryContingencyManager`` of
    ``ThresholdEventOperator`` would: the latter keeps per-element event tables in xarray,
    which made it most of a verification's time (tables per threshold, stratum and model).
    """
    from scores.categorical import BasicContingencyManager

    levels = np.asarray(thresholds, dtype=float)[:, None]
    fe, oe = op(f[None, :], levels), op(o[None, :], levels)
    counts = {"tp_count": fe & oe, "tn_count": ~fe & ~oe, "fp_count": fe & ~oe, "fn_count": ~fe & oe}
    table = {k: xr.DataArray(np.count_nonzero(v, axis=1).astype(float), dims="threshold")
             for k, v in counts.items()}
    table["total_count"] = xr.DataArray(np.full(len(levels), float(f.size)), dims="threshold")
    return BasicContingencyManager(table)


def categorical_scores(
    fcst: Any, obs: Any, *, thresholds: list[float], event: str = "below"
) -> dict[str, float]:
    """Every contingency-table score of the score table (POD, FAR, CSI, ETS, Peirce skill
    score, frequency bias...) and the contingency counts at each threshold.

    Names carry the threshold, e.g. ``pod_1000``, ``hits_1000``. A score whose
    denominator is zero (no event observed or forecast) is NaN, as ``scores`` gives it.
    """
    f, o = _as_arrays(fcst, obs)
    manager = contingency_manager(f.values, o.values, list(thresholds), event_operator(event))
    values = {f"{score.name}_": np.asarray(getattr(manager, score.function)(), dtype=float)
              for score in scores_of("categorical", source="contingency")}
    counts = manager.get_counts()
    for name, key in (("hits_", "tp_count"), ("misses_", "fn_count"), ("false_alarms_", "fp_count"),
                      ("correct_negatives_", "tn_count")):
        values[name] = np.asarray(counts[key], dtype=float)
    out: dict[str, float] = {}
    for i, threshold in enumerate(thresholds):
        label = threshold_label(threshold)
        for prefix, column in values.items():
            out[f"{prefix}{label}"] = float(column[i])
    return out


def undefined_reason(score: str, *, hits: float, misses: float, false_alarms: float,
                     correct_negatives: float) -> str | None:
    """Why a categorical score is undefined (its denominator is zero) for these counts,
    in words for a report ("no forecasts of the event"); None when it is defined or the
    score table gives no reason for it."""
    entry = lookup(score)
    if entry is None or entry.undefined is None:
        return None
    return entry.undefined(Counts(hits, misses, false_alarms, correct_negatives))


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
    p = np.asarray(prob, dtype=float)
    e = np.asarray(obs_event, dtype=float)
    if p.shape != e.shape:
        raise VerificationError(f"probabilities {p.shape} and events {e.shape} differ in shape")
    if np.any((p < 0) | (p > 1)):
        raise VerificationError("probabilities must lie in [0, 1]")
    if not np.isin(e, (0.0, 1.0)).all():
        raise VerificationError("observed events must be 0 or 1")
    brier_score = SCORES["brier"].resolve()
    return float(brier_score(xr.DataArray(p, dims="time"), xr.DataArray(e, dims="time")))


def skill(score: str, value: float, reference: float) -> float | None:
    """Skill of ``value`` against ``reference`` for ``score``.

    ``(value - reference) / (perfect - reference)``, which for error scores (perfect 0)
    is ``1 - score/score_reference``. None where no skill is defined (bias, frequency
    bias: closer to perfect is better), the score is unknown or the reference is
    already perfect.
    """
    entry = lookup(score)
    if entry is None or not entry.has_skill or not np.isfinite(value) or not np.isfinite(reference):
        return None
    if reference == entry.perfect:
        return None
    return float((value - reference) / (entry.perfect - reference))


def worse_by_pct(score: str, value: float, reference: float) -> float:
    """How many percent ``value`` is worse than ``reference`` (negative: better), in the
    score's own orientation (for bias: by the distance from perfect)."""
    if not np.isfinite(value) or not np.isfinite(reference):
        return float("nan")
    entry = lookup(score)
    if entry is None:
        raise VerificationError(f"unknown score {score!r}: not in wxops.verify.score_table")
    diff = entry.distance(value) - entry.distance(reference)
    scale = abs(entry.distance(reference)) if entry.direction == "closer" else abs(reference)
    if scale == 0:
        return 0.0 if diff == 0 else float("inf") * np.sign(diff)
    return float(100.0 * diff / scale)
