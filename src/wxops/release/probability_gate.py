"""Gate rules of probability forecasts: Brier skill, reliability and enough events.

:func:`evaluate_probability_gate` is a pure stage and returns the same
:class:`~wxops.release.gate.GateResult` as the deterministic gate. Per threshold:

* ``bss_<t> vs climatology``: Brier skill score against the climatological event
  frequency of the non-test rows above ``min_bss``, and significant: the one-sided
  Diebold-Mariano test (HLN) on the per-case Brier scores, the machinery of the rmse
  rules (``wxops.release.significance``), must give p < ``alpha``.
* ``brier_<t> vs champion``: at most ``max_worse_pct`` worse than the champion's
  probabilities on the same rows, unless the difference is not significant.
* ``reliability_<t>``: every bin of the reliability diagram with at least
  ``reliability_min_cases`` cases must have its observed frequency inside the interval a
  reliable forecaster stays in. The interval is binomial around the bin's mean forecast
  (conservative for the Poisson-binomial count of a reliable forecaster) at level
  ``reliability_alpha / m`` for m bins tested (Bonferroni), with the bin's cases reduced
  to an effective number n (1 - r) / (1 + r) for the lag-1 autocorrelation r >= 0 of the
  forecast errors (hourly fog persists; independent cases would make the interval too
  narrow). So a reliable forecaster fails the rule with probability at most
  ``reliability_alpha`` per threshold (the family-wise false-alarm rate).
* every rule with fewer than ``min_events`` observed events says "too few events" and
  neither passes nor fails.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from wxops.config import ProbabilityGateConfig
from wxops.errors import GateError
from wxops.release.gate import GateResult, GateRow
from wxops.release.significance import dm_hln_test
from wxops.verify.probabilistic import consistency_interval, event_indicator, reliability_table


def error_autocorrelation(prob: np.ndarray, events: np.ndarray) -> float:
    """Lag-1 autocorrelation of the forecast errors ``events - prob`` in time order,
    clipped to [0, 0.95] (negative correlation is not used to narrow the interval)."""
    r = events - prob
    if r.size < 3 or float(np.std(r[:-1])) == 0 or float(np.std(r[1:])) == 0:
        return 0.0
    rho = float(np.corrcoef(r[:-1], r[1:])[0, 1])
    return float(min(max(rho, 0.0), 0.95)) if math.isfinite(rho) else 0.0


def reliability_verdict(prob: Any, events: Any, *, alpha: float, min_cases: int
                        ) -> tuple[bool, str, list[dict[str, float]]]:
    """Whether every bin with enough cases lies inside its consistency interval.

    Returns (passed, why, the tested bins with their intervals).
    """
    p = np.asarray(prob, dtype=float)
    e = np.asarray(events, dtype=float)
    table = reliability_table(p, e)
    tested = table[table["n"] >= min_cases]
    if tested.empty:
        return True, f"no bin with {min_cases} cases to test", []
    rho = error_autocorrelation(p, e)
    shrink = (1 - rho) / (1 + rho)
    level = alpha / len(tested)
    bins: list[dict[str, float]] = []
    outside = []
    for _, row in tested.iterrows():
        n_eff = max(1, round(float(row["n"]) * shrink))
        low, high = consistency_interval(n_eff, float(row["mean_forecast"]), alpha=level)
        freq = float(row["observed_frequency"])
        bins.append({"bin_low": float(row["bin_low"]), "n": float(row["n"]), "n_effective": n_eff,
                     "mean_forecast": float(row["mean_forecast"]), "observed_frequency": freq,
                     "low": low, "high": high})
        if not low <= freq <= high:
            outside.append(f"{row['bin_low']:.1f}-{row['bin_high']:.1f}: forecast "
                           f"{row['mean_forecast']:.2f}, observed {freq:.2f} outside "
                           f"[{low:.2f}, {high:.2f}] (n={int(row['n'])})")
    note = (f"{len(tested)} bin(s) tested at family-wise {alpha:g}, effective cases x"
            f"{shrink:.2f} (error autocorrelation {rho:.2f})")
    if outside:
        return False, "off the diagonal: " + "; ".join(outside) + f" ({note})", bins
    return True, f"every bin consistent with reliability ({note})", bins


def evaluate_probability_gate(
    prob: dict[float, Any],
    obs: Any,
    *,
    climatology: dict[float, float],
    cfg: ProbabilityGateConfig,
    event: str = "below",
    champion: dict[float, Any] | None = None,
    lead_time: int = 1,
) -> GateResult:
    """Judge probability forecasts per threshold (rows in time order).

    Args:
        prob: threshold -> the candidate's event probability per row.
        obs: observations in the target's unit.
        climatology: threshold -> event frequency of the non-test rows.
        cfg: the rules (``gate.probability``).
        event: ``below`` or ``above`` the threshold.
        champion: threshold -> the champion's probabilities on the same rows, if any.
        lead_time: forecast horizon in rows (the shortest Diebold-Mariano lag).
    """
    if not prob:
        raise GateError("no probability forecast to judge")
    o = np.asarray(obs, dtype=float)
    rows: list[GateRow] = []
    for threshold in sorted(prob):
        if threshold not in climatology:
            raise GateError(f"no climatological frequency for threshold {threshold:g}")
        label = f"{threshold:g}"
        p = np.asarray(prob[threshold], dtype=float)
        if p.shape != o.shape:
            raise GateError(f"probabilities at {label} have shape {p.shape}; observations {o.shape}")
        keep = np.isfinite(o) & np.isfinite(p)
        pk = p[keep]
        e = event_indicator(o[keep], threshold, event)
        n, events = int(e.size), int(e.sum())
        clim = float(climatology[threshold])
        loss = (pk - e) ** 2
        loss_clim = (clim - e) ** 2
        few = events < cfg.min_events
        few_why = f"too few events (n={events} < {cfg.min_events} observed)"
        # Brier skill against climatology, with significance
        bs, bs_clim = float(loss.mean()), float(loss_clim.mean())
        bss = 1.0 - bs / bs_clim if bs_clim > 0 else float("nan")
        base: dict[str, Any] = {"score": f"bss_{label}", "against": "climatology", "candidate": bs,
                "reference": bs_clim, "skill": bss, "n": n, "events": events,
                "effect": bs - bs_clim}
        rule = f"bss_{label} vs climatology: skill > {cfg.min_bss:g}"
        if few:
            rows.append(GateRow(rule=rule, status="too few events", why=few_why, **base))
        else:
            test = dm_hln_test(loss, loss_clim, lead_time=lead_time) if n >= 8 else None
            pv = test.p_value if test is not None else None
            extra: dict[str, Any] = ({"p_value": pv, "ci_low": test.ci_low, "ci_high": test.ci_high,
                      "test": test.test} if test is not None else {})
            if not math.isfinite(bss) or bss <= cfg.min_bss:
                rows.append(GateRow(rule=rule, status="fail", why=f"skill {bss:.3f} <= "
                                    f"{cfg.min_bss:g} (Brier {bs:.4f} vs {bs_clim:.4f})",
                                    **base, **extra))
            elif pv is None or pv >= cfg.alpha:
                rows.append(GateRow(rule=rule, status="fail", why=f"skill {bss:.3f} not "
                                    f"significant (p={pv if pv is not None else float('nan'):.3f}"
                                    f" >= {cfg.alpha:g})", **base, **extra))
            else:
                rows.append(GateRow(rule=rule, status="pass", why=f"skill {bss:.3f} (p={pv:.3g})",
                                    **base, **extra))
        rows.append(_champion_row(label, threshold, pk, e, loss, keep, champion, cfg, few,
                                  few_why, lead_time))
        # reliability
        rule = f"reliability_{label}: no bin off the diagonal"
        rbase: dict[str, Any] = {"score": f"reliability_{label}", "against": "diagonal", "n": n,
                 "events": events}
        if few:
            rows.append(GateRow(rule=rule, status="too few events", why=few_why, **rbase))
        else:
            ok, why, _ = reliability_verdict(pk, e, alpha=cfg.reliability_alpha,
                                             min_cases=cfg.reliability_min_cases)
            rows.append(GateRow(rule=rule, status="pass" if ok else "fail", why=why, **rbase))
    return GateResult(passed=not any(r.status == "fail" for r in rows), rows=rows)


def _champion_row(label: str, threshold: float, pk: np.ndarray, e: np.ndarray, loss: np.ndarray,
                  keep: np.ndarray, champion: dict[float, Any] | None, cfg: ProbabilityGateConfig,
                  few: bool, few_why: str, lead_time: int) -> GateRow:
    rule = f"brier_{label} vs champion: at most {cfg.max_worse_pct:g} % worse"
    base: dict[str, Any] = {"rule": rule, "score": f"brier_{label}", "against": "champion"}
    if champion is None or threshold not in champion:
        return GateRow(**base, status="skipped", why="no champion probability forecast")
    c = np.asarray(champion[threshold], dtype=float)[keep]
    if not np.isfinite(c).all():
        return GateRow(**base, status="skipped", why="champion probabilities missing on test rows")
    loss_champ = (c - e) ** 2
    cand, ref = float(loss.mean()), float(loss_champ.mean())
    worse = 100.0 * (cand - ref) / ref if ref > 0 else (0.0 if cand == ref else float("inf"))
    values: dict[str, Any] = {"candidate": cand, "reference": ref, "worse_pct": worse,
                              "n": int(e.size), "events": int(e.sum()), "effect": cand - ref}
    if few:
        return GateRow(**base, **values, status="too few events", why=few_why)
    test = dm_hln_test(loss, loss_champ, lead_time=lead_time) if e.size >= 8 else None
    if test is not None:
        values.update(p_value=test.p_value, ci_low=test.ci_low, ci_high=test.ci_high,
                      test=test.test)
    if worse <= cfg.max_worse_pct:
        return GateRow(**base, **values, status="pass", why=f"{worse:+.1f} % vs champion")
    if test is not None and 1.0 - test.p_value >= cfg.alpha:
        return GateRow(**base, **values, status="pass",
                       why=f"{worse:.1f} % worse but not significant (p={1 - test.p_value:.3f})")
    return GateRow(**base, **values, status="fail",
                   why=f"{worse:.1f} % worse than champion (limit {cfg.max_worse_pct:g} %)")
