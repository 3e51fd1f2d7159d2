"""The quality gate: rules from ``wxops.yaml`` judged on the candidate's scores.

:func:`evaluate_gate` is a pure stage. Each rule compares one score of the candidate
with the same score of a reference forecast (climatology, persistence, raw NWP) or of
the current champion, all verified on the same rows. A rule whose reference does not
exist (no champion yet, no persistence in diagnostic mode) is skipped and says so; a
categorical rule (ETS, PSS... at a threshold) with fewer observed events than
``min_events`` says "too few events (n=...)" and neither passes nor fails. The gate passes
when no rule fails. Every judged rule reports its n (rows, and events for categorical
scores), the effect (candidate minus reference) and a p-value with a 95 % interval:
Diebold-Mariano (HLN) for rmse/mae, a block bootstrap for categorical scores.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from wxops.config import GateConfig, GateRule
from wxops.errors import GateError
from wxops.release.significance import (
    TestResult,
    block_bootstrap_test,
    bootstrap_difference,
    dm_hln_test,
)
from wxops.verify.evaluate import Verification
from wxops.verify.score_table import lookup
from wxops.verify.scoring import base_score, event_operator, skill, worse_by_pct

#: Scores with a per-forecast loss the bootstrap can resample.
_LOSSES = {"rmse": np.square, "mae": np.abs}


@dataclass(frozen=True)
class GateRow:
    """The verdict of one rule."""

    rule: str
    score: str
    against: str
    status: str
    """``pass``, ``fail``, ``skipped`` or ``too few events``."""
    why: str
    candidate: float | None = None
    reference: float | None = None
    skill: float | None = None
    worse_pct: float | None = None
    p_value: float | None = None
    """One-sided p-value that the candidate is not better than the reference."""
    n: int | None = None
    """Forecasts judged."""
    events: int | None = None
    """Observed events (categorical scores)."""
    effect: float | None = None
    """Candidate minus reference, in the score's unit (rmse: metres for visibility)."""
    ci_low: float | None = None
    ci_high: float | None = None
    """95 % interval of ``effect``."""
    test: str | None = None
    """``dm-hln`` or ``block-bootstrap`` (with the dependence length in rows)."""


@dataclass(frozen=True)
class GateResult:
    """Pass/fail and one row per rule."""

    passed: bool
    rows: list[GateRow] = field(default_factory=list)

    @property
    def failed_rules(self) -> list[str]:
        return [r.rule for r in self.rows if r.status == "fail"]

    def summary(self) -> str:
        """One line: which rules failed, or that all applicable rules passed."""
        if self.passed:
            n = sum(r.status == "pass" for r in self.rows)
            few = sum(r.status == "too few events" for r in self.rows)
            return (f"gate passed ({n} rule(s) passed, {few} with too few events, "
                    f"{len(self.rows) - n - few} skipped)")
        return "gate failed: " + "; ".join(
            f"{r.rule} ({r.why})" for r in self.rows if r.status == "fail")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "rows": [_clean(asdict(r)) for r in self.rows]}


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()}


def evaluate_gate(
    verification: Verification,
    cfg: GateConfig,
    *,
    forecasts: dict[str, Any] | None = None,
    obs: Any = None,
    seed: int = 0,
    hours_per_row: float = 1,
    lead_time: int = 1,
) -> GateResult:
    """Judge every rule of ``cfg`` on ``verification`` (the candidate's row).

    Args:
        verification: scores of ``candidate`` and the references on common rows.
        cfg: the gate section of the config.
        forecasts, obs: the time-ordered forecasts and observations behind
            ``verification``, for the bootstrap p-values of rmse/mae rules. Without them
            no p-value is computed and rules with ``alpha`` judge the scores alone.
        seed: seed of the bootstrap.
        hours_per_row: hours between consecutive rows (the replay's cycle interval; a
            fraction of it for NWP tables with several stations and lead times per init
            time), so a fixed ``cfg.bootstrap_block_hours`` still spans that many hours.
        lead_time: forecast horizon in rows, the shortest Diebold-Mariano lag.
    """
    if "candidate" not in verification.sources:
        raise GateError(
            f"the verification has no 'candidate' forecast (has {verification.sources})")
    block = (None if cfg.bootstrap_block_hours is None
             else max(1, int(cfg.bootstrap_block_hours // max(hours_per_row, 1e-9))))
    ctx = _Context(forecasts, obs, cfg, seed, block, max(1, lead_time), verification,
                   hours_per_row)
    rows = [_judge(rule, verification, cfg, ctx) for rule in cfg.rules]
    return GateResult(passed=not any(r.status == "fail" for r in rows), rows=rows)


@dataclass
class _Context:
    forecasts: dict[str, Any] | None
    obs: Any
    cfg: GateConfig
    seed: int
    block: int | None
    lead_time: int
    verification: Verification
    hours_per_row: float = 1.0


def _judge(rule: GateRule, v: Verification, cfg: GateConfig, ctx: _Context) -> GateRow:
    if rule.score not in v.scores.columns:
        raise GateError(
            f"gate rule '{rule.label}' names unknown score '{rule.score}'; the verification "
            f"has {sorted(c for c in v.scores.columns if c != 'n')}"
        )
    base: dict[str, Any] = {"rule": rule.label, "score": rule.score, "against": rule.against}
    if rule.against not in v.sources:
        why = {"champion": "no champion yet", "persistence": "persistence needs lead-time mode",
               "nwp": "no raw NWP column (verify.nwp_column)"}.get(rule.against, "not verified")
        return GateRow(**base, status="skipped", why=why)
    cand = v.score("candidate", rule.score)
    ref = v.score(rule.against, rule.score)
    s = skill(rule.score, cand, ref)
    worse = worse_by_pct(rule.score, cand, ref)
    label = rule.score.rpartition("_")[2]
    events = None
    if f"hits_{label}" in v.scores.columns and base_score(rule.score) != rule.score:
        events = int(v.score("candidate", f"hits_{label}") + v.score("candidate", f"misses_{label}"))
    values: dict[str, Any] = {"candidate": cand, "reference": ref, "skill": s,
                              "worse_pct": worse, "n": v.n, "events": events,
                              "effect": cand - ref if math.isfinite(cand - ref) else None}
    minimum = rule.min_events or cfg.min_events
    if events is not None and events < minimum:
        return GateRow(**base, **values, status="too few events",
                       why=f"too few events (n={events} < {minimum} observed)")
    test = _significance(rule.score, rule.against, ctx)
    if test is not None:
        values.update(p_value=test.p_value, ci_low=test.ci_low, ci_high=test.ci_high,
                      test=f"{test.test} (block {test.lag * ctx.hours_per_row:.3g} h)")
        if base_score(rule.score) == "rmse" and math.isfinite(ref):
            # the test is on squared errors; report it as an RMSE difference (unit of the
            # target), the reference's mean squared error held fixed
            values.update(ci_low=_rmse_shift(ref, test.ci_low),
                          ci_high=_rmse_shift(ref, test.ci_high))
    p = test.p_value if test is not None and math.isfinite(test.p_value) else None
    if not math.isfinite(ref):
        return GateRow(**base, **values, status="skipped",
                       why=f"{rule.score} of {rule.against} undefined on this test block")
    if not math.isfinite(cand):
        return GateRow(**base, **values, status="fail",
                       why=f"candidate's {rule.score} undefined (no event forecast?)")
    if rule.min_skill is not None:
        if s is None:
            return GateRow(**base, **values, status="fail",
                           why=f"no skill defined ({rule.against} is already perfect)")
        if s <= rule.min_skill:
            return GateRow(**base, **values, status="fail",
                           why=f"skill {s:.3f} <= {rule.min_skill:g}{_counts(v, rule, label)}")
        if rule.alpha is not None and p is not None and p >= rule.alpha:
            return GateRow(**base, **values, status="fail",
                           why=f"skill {s:.3f} not significant (p={p:.3f} >= {rule.alpha:g})")
        return GateRow(**base, **values, status="pass", why=f"skill {s:.3f}")
    assert rule.max_worse_pct is not None
    if worse <= rule.max_worse_pct:
        return GateRow(**base, **values, status="pass",
                       why=f"{_pct(worse)} vs {rule.against}")
    if rule.alpha is not None and p is not None and 1.0 - p >= rule.alpha:
        return GateRow(**base, **values, status="pass",
                       why=f"{_pct(worse)} but not significant (p={1 - p:.3f})")
    return GateRow(**base, **values, status="fail",
                   why=f"{worse:.1f} % worse than {rule.against} (limit {rule.max_worse_pct:g} %)")


def _rmse_shift(ref: float, mse_difference: float) -> float:
    """RMSE difference matching a difference in mean squared error."""
    return math.sqrt(max(ref * ref + mse_difference, 0.0)) - ref


def _counts(v: Verification, rule: GateRule, label: str) -> str:
    """`` (hits 0/12 vs 5/12)`` for categorical rules: what a forecaster checks first."""
    if f"hits_{label}" not in v.scores.columns or base_score(rule.score) == rule.score:
        return ""
    def one(src: str) -> str:
        hits = int(v.score(src, f"hits_{label}"))
        return f"{hits}/{hits + int(v.score(src, f'misses_{label}'))}"
    return f"; events hit: candidate {one('candidate')}, {rule.against} {one(rule.against)}"


def _pct(worse: float) -> str:
    if worse == 0:
        return "equal"
    return f"{worse:.1f} % worse" if worse > 0 else f"{-worse:.1f} % better"


def _significance(score: str, against: str, ctx: _Context) -> TestResult | None:
    """DM-HLN for rmse/mae, block bootstrap for categorical scores; None without data."""
    forecasts, obs = ctx.forecasts, ctx.obs
    if forecasts is None or obs is None or against not in forecasts:
        return None
    o = np.asarray(obs, dtype=float)
    fc = np.asarray(forecasts["candidate"], dtype=float)
    fr = np.asarray(forecasts[against], dtype=float)
    keep = np.isfinite(o) & np.isfinite(fc) & np.isfinite(fr)
    o, fc, fr = o[keep], fc[keep], fr[keep]
    if o.size < 8:
        return None
    name = base_score(score)
    if name in _LOSSES:
        a, b = _LOSSES[name](fc - o), _LOSSES[name](fr - o)
        if ctx.block is not None:
            return block_bootstrap_test(a, b, block_length=ctx.block,
                                        n_samples=ctx.cfg.bootstrap_samples, seed=ctx.seed)
        return dm_hln_test(a, b, lead_time=ctx.lead_time)
    entry = lookup(score)
    # the bootstrap resamples scores' contingency tables; bias-like scores have no
    # one-sided "better" to test
    if entry is None or entry.source != "contingency" or entry.direction == "closer":
        return None
    threshold = float(score.rpartition("_")[2])
    op = event_operator(ctx.verification.event)
    sign = 1.0 if entry.direction == "higher" else -1.0

    def difference(index: np.ndarray) -> np.ndarray:
        return sign * (_resampled(entry.function, fc, o, index, threshold, op)
                       - _resampled(entry.function, fr, o, index, threshold, op))

    p, lo, hi, block = bootstrap_difference(
        difference, o.size, dependence=op(o, threshold).astype(float),
        n_samples=ctx.cfg.bootstrap_samples, seed=ctx.seed)
    lo, hi = sorted((sign * lo, sign * hi))
    return TestResult("block-bootstrap", p, float("nan"), lo, hi, int(o.size), block)


def _resampled(method: str, f: np.ndarray, o: np.ndarray, index: np.ndarray, threshold: float,
               op: Any) -> np.ndarray:
    """The contingency-table ``method`` of each resample (rows ``index``), by scores."""
    import xarray as xr
    from scores.categorical import ThresholdEventOperator

    dims = ("sample", "time")
    manager = ThresholdEventOperator(default_event_threshold=threshold, default_op_fn=op) \
        .make_contingency_manager(xr.DataArray(f[index], dims=dims),
                                  xr.DataArray(o[index], dims=dims))
    table = manager.transform(preserve_dims=["sample"])
    return np.asarray(getattr(table, method)(), dtype=float).reshape(-1)
