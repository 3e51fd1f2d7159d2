"""Verification of event probabilities (P(visibility < 1000 m)...), by the ``scores`` package.

``scores`` computes the Brier score (``brier_score``), the ROC curve and its area
(``roc_curve_data``, ``roc_auc``) and the relative economic value for a user with a
cost/loss ratio (``relative_economic_value``). It has no binned reliability diagram, so
:func:`reliability_table` bins the forecasts here (the classic ten equal bins of width
0.1) and gives Murphy's decomposition BS = reliability - resolution + uncertainty of the
binned forecasts, and, per bin, the interval the observed frequency of a reliable
forecaster lies in (see :func:`consistency_interval`), which the gate's reliability rule
reads.

Skill is against the climatological event frequency of the non-test rows (training and
validation), a constant probability: BSS = 1 - BS / BS(climatology).

Over all thresholds together, :func:`ranked_probability_score` gives the ranked
probability score of the ordered categories the thresholds make (fog, mist, clear): the
sum over thresholds of the Brier scores. It is the threshold-weighted CRPS
(Gneiting and Ranjan 2011) whose weight is a unit mass at each threshold, so a proper
score of the predictive distribution read at the thresholds. The unweighted CRPS in
metres would need the distribution between and beyond the thresholds, which a
threshold model does not forecast (interpolating one would score an assumption).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from wxops.errors import VerificationError
from wxops.verify.evaluate import SEASONS, json_ready

#: Default cost/loss ratios of the relative economic value curve.
COST_LOSS_RATIOS: tuple[float, ...] = tuple(round(x, 2) for x in np.arange(0.02, 1.0, 0.02))
#: Probability thresholds a user of the forecast may act on (value curve, ROC points).
DECISION_THRESHOLDS: tuple[float, ...] = tuple(round(x, 2) for x in np.arange(0.05, 1.0, 0.05))


def _check(prob: Any, events: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(prob, dtype=float).reshape(-1)
    e = np.asarray(events, dtype=float).reshape(-1)
    if p.shape != e.shape:
        raise VerificationError(f"probabilities {p.shape} and events {e.shape} differ in shape")
    if p.size == 0:
        raise VerificationError("no probability forecast to verify")
    if not np.isfinite(p).all() or np.any((p < 0) | (p > 1)):
        raise VerificationError("probabilities must be finite and lie in [0, 1]")
    if not np.isin(e, (0.0, 1.0)).all():
        raise VerificationError("observed events must be 0 or 1")
    return p, e


def event_indicator(obs: Any, threshold: float, event: str = "below") -> np.ndarray:
    """1.0 where the observation is an event (below/above ``threshold``), else 0.0;
    NaN where the observation is missing."""
    from wxops.verify.scoring import event_operator

    o = np.asarray(obs, dtype=float)
    out = event_operator(event)(o, threshold).astype(float)
    out[~np.isfinite(o)] = np.nan
    return np.asarray(out)


def consistency_interval(n: int, p: float, *, alpha: float) -> tuple[float, float]:
    """Central ``1 - alpha`` interval of the observed frequency in a bin of ``n`` cases
    whose mean forecast probability is ``p``, if the forecast is reliable.

    The count of events of a reliable forecaster is a sum of Bernoulli trials with the
    forecast probabilities (Poisson-binomial); the binomial with their mean ``p`` has at
    least that variance, so the interval is conservative (the test rejects a reliable
    forecaster with probability at most ``alpha``; Broecker and Smith 2007 use the same
    idea by resampling).
    """
    from scipy.stats import binom

    if n <= 0:
        return float("nan"), float("nan")
    lo = binom.ppf(alpha / 2, n, p)
    hi = binom.ppf(1 - alpha / 2, n, p)
    return float(lo / n), float(hi / n)


def reliability_table(prob: Any, events: Any, *, bins: int = 10,
                      alpha: float = 0.01) -> pd.DataFrame:
    """Reliability diagram data: per probability bin the number of cases ``n``, observed
    events, mean forecast probability, observed frequency and its consistency interval
    (``low``, ``high``) at level ``alpha`` around the mean forecast."""
    p, e = _check(prob, events)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    rows = []
    for k in range(bins):
        mask = index == k
        n = int(mask.sum())
        mean_p = float(p[mask].mean()) if n else float("nan")
        freq = float(e[mask].mean()) if n else float("nan")
        low, high = consistency_interval(n, mean_p, alpha=alpha) if n else (np.nan, np.nan)
        rows.append({"bin_low": float(edges[k]), "bin_high": float(edges[k + 1]), "n": n,
                     "events": int(e[mask].sum()), "mean_forecast": mean_p,
                     "observed_frequency": freq, "low": low, "high": high})
    return pd.DataFrame(rows)


def brier_decomposition(table: pd.DataFrame, base_rate: float) -> dict[str, float]:
    """Murphy's reliability, resolution and uncertainty of the binned forecasts."""
    filled = table[table["n"] > 0]
    total = float(filled["n"].sum())
    w = filled["n"] / total
    reliability = float((w * (filled["mean_forecast"] - filled["observed_frequency"]) ** 2).sum())
    resolution = float((w * (filled["observed_frequency"] - base_rate) ** 2).sum())
    return {"reliability": reliability, "resolution": resolution,
            "uncertainty": float(base_rate * (1 - base_rate))}


def brier_scores(prob: Any, events: Any, *, climatology: float) -> dict[str, float]:
    """Brier score, Brier score of the constant ``climatology`` frequency, the Brier
    skill score against it, ROC area, decomposition, cases ``n`` and ``events``."""
    from scores.probability import brier_score, roc_auc

    p, e = _check(prob, events)
    if not 0 <= climatology <= 1:
        raise VerificationError(f"climatological frequency {climatology} is not in [0, 1]")
    f, o = xr.DataArray(p, dims="time"), xr.DataArray(e, dims="time")
    bs = float(brier_score(f, o))
    bs_clim = float(brier_score(xr.full_like(f, climatology), o))
    n_events = int(e.sum())
    auc = float(roc_auc(f, o)) if 0 < n_events < e.size else float("nan")
    out = {"brier": bs, "brier_climatology": bs_clim,
           "bss": 1.0 - bs / bs_clim if bs_clim > 0 else float("nan"),
           "auc": auc, "n": float(e.size), "events": float(n_events)}
    out.update(brier_decomposition(reliability_table(p, e), float(e.mean())))
    return out


def brier_skill_score(prob: Any, events: Any, *, climatology: float) -> float:
    """1 - BS / BS(constant ``climatology`` frequency), by ``scores``' Brier score."""
    out = brier_scores(prob, events, climatology=climatology)["bss"]
    return float(out)


def ranked_probability_score(prob: Any, events: Any) -> float:
    """Mean over rows of the sum over thresholds of (p - o)^2: rows x thresholds of event
    probabilities and observed events (0/1), each threshold by ``scores``' Brier score.

    The ranked probability score of the categories between the thresholds, equal to the
    CRPS weighted by a unit mass at each threshold (see the module docstring). 0 is
    perfect; with one threshold it is the Brier score.
    """
    from scores.probability import brier_score

    p = np.asarray(prob, dtype=float)
    e = np.asarray(events, dtype=float)
    if p.ndim != 2 or p.shape != e.shape:
        raise VerificationError(f"probabilities {p.shape} and events {e.shape} must be the "
                                "same rows x thresholds")
    _check(p, e)
    dims = ("time", "threshold")
    per_threshold = brier_score(xr.DataArray(p, dims=dims), xr.DataArray(e, dims=dims),
                                preserve_dims=["threshold"])
    return float(per_threshold.sum())


def roc_points(prob: Any, events: Any,
               thresholds: tuple[float, ...] = DECISION_THRESHOLDS) -> pd.DataFrame:
    """ROC curve: probability of detection and of false detection when acting at each
    probability threshold (``scores.probability.roc_curve_data``)."""
    from scores.probability import roc_curve_data

    p, e = _check(prob, events)
    data = roc_curve_data(xr.DataArray(p, dims="time"), xr.DataArray(e, dims="time"),
                          [0.0, *thresholds])
    return pd.DataFrame({"probability_threshold": data["threshold"].values,
                         "pod": data["POD"].values, "pofd": data["POFD"].values})


def economic_value(prob: Any, events: Any,
                   cost_loss_ratios: tuple[float, ...] = COST_LOSS_RATIOS) -> pd.DataFrame:
    """Relative economic value per cost/loss ratio of a user acting at the best
    probability threshold (``scores``' maximum REV: the envelope of the value curves);
    1 is the value of a perfect forecast, 0 that of the climatological decision."""
    from scores.probability import relative_economic_value

    p, e = _check(prob, events)
    if not 0 < e.sum() < e.size:
        return pd.DataFrame({"cost_loss_ratio": list(cost_loss_ratios),
                             "value": [float("nan")] * len(cost_loss_ratios)})
    out = relative_economic_value(
        xr.DataArray(p, dims="time"), xr.DataArray(e, dims="time"),
        cost_loss_ratios=list(cost_loss_ratios), probability_thresholds=list(DECISION_THRESHOLDS),
        generate_maximum_rev=True)
    best = out["maximum"] if isinstance(out, xr.Dataset) else out.max("probability_threshold")
    return pd.DataFrame({"cost_loss_ratio": best["cost_loss_ratio"].values,
                         "value": best.values.astype(float)})


@dataclass
class ProbabilityVerification:
    """Probabilistic scores per threshold on the test rows, with diagrams and strata."""

    scores: pd.DataFrame
    """Index: threshold; columns ``brier, brier_climatology, bss, auc, reliability,
    resolution, uncertainty, n, events, climatology``."""
    reliability: dict[float, pd.DataFrame]
    roc: dict[float, pd.DataFrame]
    value: dict[float, pd.DataFrame]
    strata: dict[str, pd.DataFrame]
    """``hour``/``season``/``month`` -> ``group, threshold, brier, bss, n, events``."""
    event: str
    notes: list[str] = field(default_factory=list)
    overall: dict[str, float] = field(default_factory=dict)
    """Scores over all thresholds: ``rps``, ``rps_climatology``, ``rpss`` (skill), ``n``."""

    def metrics(self, prefix: str = "test_") -> dict[str, float]:
        """Flat metrics for MLflow, e.g. ``test_bss_1000``, ``test_events_1000``,
        ``test_rps``."""
        out: dict[str, float] = {f"{prefix}{k}": float(v) for k, v in self.overall.items()
                                 if k in ("rps", "rpss")}
        for threshold, row in self.scores.iterrows():
            label = f"{float(threshold):g}"  # type: ignore[arg-type]
            for name in ("brier", "bss", "auc", "reliability", "resolution", "n", "events"):
                out[f"{prefix}{name}_{label}"] = float(row[name])
        return out

    def summary(self, title: str) -> list[str]:
        """One line per threshold: Brier skill against climatology, with n and events."""
        lines = []
        for threshold, row in self.scores.iterrows():
            lines.append(
                f"{title} P({self.event} {float(threshold):g}): BSS vs climatology "  # type: ignore[arg-type]
                f"{row['bss']:+.3f} (Brier {row['brier']:.4f} vs {row['brier_climatology']:.4f}), "
                f"ROC area {row['auc']:.3f}, n={int(row['n'])}, events={int(row['events'])}")
        if len(self.scores) > 1 and self.overall:
            o = self.overall
            lines.append(f"{title} ranked probability score over the thresholds {o['rps']:.4f} "
                         f"vs climatology {o['rps_climatology']:.4f}: skill {o['rpss']:+.3f}, "
                         f"n={int(o['n'])}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame) -> Any:
            return json_ready(frame.to_dict(orient="records"))

        return {
            "event": self.event,
            "scores": records(self.scores.rename_axis("threshold").reset_index()),
            "reliability": {f"{t:g}": records(v) for t, v in self.reliability.items()},
            "roc": {f"{t:g}": records(v) for t, v in self.roc.items()},
            "economic_value": {f"{t:g}": records(v) for t, v in self.value.items()},
            "strata": {k: records(v) for k, v in self.strata.items()},
            "overall": json_ready(self.overall),
            "notes": self.notes,
        }


def verify_probabilities(
    prob: dict[float, Any],
    obs: Any,
    *,
    climatology: dict[float, float],
    valid_time: Any,
    event: str = "below",
    block: Any = None,
) -> ProbabilityVerification:
    """Verify event probabilities per threshold against the observations (a pure stage).

    Args:
        prob: threshold -> probability of the event per row, aligned with ``obs``.
        obs: verifying observations in the target's unit.
        climatology: threshold -> event frequency in the non-test (training and
            validation) rows: the reference forecast of the skill score.
        valid_time: valid time per row (strata by hour, month and season).
        event: ``below`` or ``above`` the threshold.
        block: block label per row (``1988-01``), so months follow the data's blocks.
    """
    if not prob:
        raise VerificationError("no probability forecast to verify")
    o = np.asarray(obs, dtype=float)
    times = pd.to_datetime(pd.Series(np.asarray(valid_time)), utc=True)
    if len(times) != o.size:
        raise VerificationError(f"valid_time has {len(times)} rows; observations have {o.size}")
    keep = np.isfinite(o)
    for threshold, p in prob.items():
        arr = np.asarray(p, dtype=float)
        if arr.shape != o.shape:
            raise VerificationError(f"probabilities at {threshold:g} have shape {arr.shape}; "
                                    f"observations have {o.shape}")
        keep &= np.isfinite(arr)
        if threshold not in climatology:
            raise VerificationError(f"no climatological frequency for threshold {threshold:g}")
    if not keep.any():
        raise VerificationError("no row where the observation and every probability are present")
    notes = [f"{int((~keep).sum())} rows without an observation or probability left out"] \
        if (~keep).any() else []
    times = times[keep].reset_index(drop=True)
    months = times.dt.month
    if block is not None:
        labels = pd.Series(np.asarray(block)[keep]).astype(str)
        months = pd.to_numeric(labels.str[5:7], errors="coerce").fillna(months).astype(int)
    groups = {"hour": times.dt.hour.to_numpy(), "month": months.to_numpy(),
              "season": months.map(SEASONS).to_numpy()}
    rows, reliability, roc, value = {}, {}, {}, {}
    strata_rows: dict[str, list[dict[str, Any]]] = {dim: [] for dim in groups}
    for threshold in sorted(prob):
        p = np.asarray(prob[threshold], dtype=float)[keep]
        e = event_indicator(o[keep], threshold, event)
        clim = float(climatology[threshold])
        rows[threshold] = {**brier_scores(p, e, climatology=clim), "climatology": clim}
        reliability[threshold] = reliability_table(p, e)
        roc[threshold] = roc_points(p, e)
        value[threshold] = economic_value(p, e)
        # per-case Brier scores of the forecast and of climatology, averaged per group
        cases = pd.DataFrame({"brier": _case_brier(p, e), "clim": _case_brier(
            np.full_like(p, clim), e), "events": e})
        for dim, key in groups.items():
            grouped = cases.groupby(key, sort=True)
            stats = grouped.agg(brier=("brier", "mean"), clim=("clim", "mean"),
                                n=("brier", "size"), events=("events", "sum"))
            for group, row in stats.iterrows():
                strata_rows[dim].append({
                    "group": group, "threshold": threshold, "brier": float(row["brier"]),
                    "bss": 1.0 - row["brier"] / row["clim"] if row["clim"] > 0 else float("nan"),
                    "n": int(row["n"]), "events": int(row["events"])})
    strata = {dim: pd.DataFrame(r).sort_values(["threshold", "group"], kind="stable")
              .reset_index(drop=True) for dim, r in strata_rows.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    ordered = sorted(prob)
    p_all = np.column_stack([np.asarray(prob[t], dtype=float)[keep] for t in ordered])
    e_all = np.column_stack([event_indicator(o[keep], t, event) for t in ordered])
    clim_all = np.broadcast_to([float(climatology[t]) for t in ordered], p_all.shape)
    rps, rps_clim = ranked_probability_score(p_all, e_all), ranked_probability_score(clim_all, e_all)
    overall = {"rps": rps, "rps_climatology": rps_clim,
               "rpss": 1.0 - rps / rps_clim if rps_clim > 0 else float("nan"),
               "n": float(keep.sum())}
    return ProbabilityVerification(table, reliability, roc, value, strata, event, notes, overall)


def _case_brier(p: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Brier score of each case (``scores``' brier_score without reduction)."""
    from scores.probability import brier_score

    out = brier_score(xr.DataArray(p, dims="time"), xr.DataArray(e, dims="time"),
                      preserve_dims="all")
    return np.asarray(out.values, dtype=float)


@dataclass(frozen=True)
class CalibrationTest:
    """Whether probability forecasts are reliable on a set of cases (see
    :func:`calibration_test`). ``p_value`` is the two tests' Bonferroni combination."""

    p_value: float
    events: float
    """Observed events."""
    forecast_events: float
    """Events the forecasts expect: the sum of their probabilities."""
    z_events: float
    """> 0: more events observed than forecast (under-forecasting); < 0: over-forecasting."""
    brier: float
    expected_brier: float
    """The Brier score reliable forecasts would score on these cases: mean p(1 - p)."""
    z_brier: float
    """Spiegelhalter's z: > 0 when the Brier score is higher than expected."""
    n: int


def _hac_z(terms: np.ndarray, null_variance: np.ndarray, lag: int) -> float:
    """Sum of ``terms`` (mean zero under reliability) over its standard deviation: the
    Bartlett (Newey-West) long-run variance of the demeaned terms over ``lag`` cases,
    never below the variance of independent cases. (Not demeaned, a shift of the mean
    would inflate its own yardstick: 21 events forecast and none observed in 96 hours
    could never be significant.)"""
    from statsmodels.stats.sandwich_covariance import S_hac_simple

    variance = float(np.sum(null_variance))
    if lag > 0 and terms.size > 1:
        centred = (terms - terms.mean())[:, None]
        variance = max(variance, float(S_hac_simple(centred, nlags=min(lag, terms.size - 1))[0, 0]))
    total = float(terms.sum())
    if variance <= 0.0:  # every forecast 0 or 1: reliable only if every case matched
        return 0.0 if total == 0.0 else float(np.sign(total)) * float("inf")
    return total / float(np.sqrt(variance))


def calibration_test(prob: Any, events: Any, *, lag: int = 0) -> CalibrationTest:
    """Whether these cases verify as reliable forecasts would: two tests, each at half
    the level (Bonferroni).

    * Events: the observed count against the sum of the probabilities, the count a
      reliable forecaster expects ("calibration in the large"). It finds a forecast that
      calls fog too often or too rarely.
    * Brier score: Spiegelhalter's z (1986), the Brier score against the ``mean p(1 - p)``
      reliable forecasts would score. It finds forecasts that are too sharp or too timid.

    Neither moves with the season's event frequency: a foggy week raises what the
    forecasts expect with what is observed. Hourly fog persists, so neighbouring cases
    are not independent: the variances count autocorrelation over ``lag`` cases. With
    ``lag=0`` (independent cases) a reliable-on-average model on the reference station
    was in alarm 47 % of the year, 12 % with 12 hours
    (``benchmarks/bench_monitor_false_alarms.py``).
    """
    from scipy.stats import norm

    if lag < 0:
        raise VerificationError(f"calibration test: lag must be >= 0, got {lag}")
    p, e = _check(prob, events)
    var = p * (1.0 - p)
    z_events = _hac_z(e - p, var, lag)
    z_brier = _hac_z((p - e) ** 2 - var, (1.0 - 2.0 * p) ** 2 * var, lag)
    p_two = [float(2.0 * norm.sf(abs(z))) for z in (z_events, z_brier)]
    return CalibrationTest(p_value=min(1.0, 2.0 * min(p_two)), events=float(e.sum()),
                           forecast_events=float(p.sum()), z_events=z_events,
                           brier=float(np.mean((p - e) ** 2)), expected_brier=float(var.mean()),
                           z_brier=z_brier, n=int(p.size))


def climatological_frequency(obs: Any, thresholds: list[float], event: str = "below"
                             ) -> dict[float, float]:
    """Event frequency per threshold in ``obs`` (pass the non-test rows)."""
    o = np.asarray(obs, dtype=float)
    o = o[np.isfinite(o)]
    if o.size == 0:
        raise VerificationError("no observation to estimate the climatological frequency from")
    return {float(t): float(np.mean(event_indicator(o, t, event))) for t in thresholds}
