"""The quality gate: rules from ``wxops.yaml`` judged on the candidate's scores.

:func:`evaluate_gate` is a pure stage. Each rule compares one score of the candidate
with the same score of a reference forecast (climatology, persistence, raw NWP) or of
the current champion, all verified on the same rows. A rule whose reference does not
exist (no champion yet, no persistence in diagnostic mode) is skipped and says so; the
gate passes when no rule fails.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from wxops.config import GateConfig, GateRule
from wxops.errors import GateError
from wxops.release.significance import block_bootstrap_pvalue
from wxops.verify.evaluate import Verification
from wxops.verify.scoring import base_score, skill, worse_by_pct

#: Scores with a per-forecast loss the bootstrap can resample.
_LOSSES = {"rmse": np.square, "mae": np.abs}


@dataclass(frozen=True)
class GateRow:
    """The verdict of one rule."""

    rule: str
    score: str
    against: str
    status: str
    """``pass``, ``fail`` or ``skipped``."""
    why: str
    candidate: float | None = None
    reference: float | None = None
    skill: float | None = None
    worse_pct: float | None = None
    p_value: float | None = None
    """One-sided bootstrap p-value that the candidate is not better than the reference."""


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
            return f"gate passed ({n} rule(s) passed, {len(self.rows) - n} skipped)"
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
            time), so a bootstrap block still spans ``cfg.bootstrap_block_hours``.
    """
    if "candidate" not in verification.sources:
        raise GateError(
            f"the verification has no 'candidate' forecast (has {verification.sources})")
    block = max(1, int(cfg.bootstrap_block_hours // max(hours_per_row, 1e-9)))
    rows = [_judge(rule, verification, cfg, forecasts, obs, seed, block) for rule in cfg.rules]
    return GateResult(passed=not any(r.status == "fail" for r in rows), rows=rows)


def _judge(
    rule: GateRule,
    v: Verification,
    cfg: GateConfig,
    forecasts: dict[str, Any] | None,
    obs: Any,
    seed: int,
    block: int,
) -> GateRow:
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
    p = _p_value(rule.score, rule.against, forecasts, obs, cfg, seed, block)
    values: dict[str, Any] = {"candidate": cand, "reference": ref, "skill": s,
                              "worse_pct": worse, "p_value": p}
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
                           why=f"skill {s:.3f} <= {rule.min_skill:g}")
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


def _pct(worse: float) -> str:
    if worse == 0:
        return "equal"
    return f"{worse:.1f} % worse" if worse > 0 else f"{-worse:.1f} % better"


def _p_value(
    score: str,
    against: str,
    forecasts: dict[str, Any] | None,
    obs: Any,
    cfg: GateConfig,
    seed: int,
    block: int,
) -> float | None:
    loss = _LOSSES.get(base_score(score))
    if loss is None or forecasts is None or obs is None or against not in forecasts:
        return None
    o = np.asarray(obs, dtype=float)
    a = loss(np.asarray(forecasts["candidate"], dtype=float) - o)
    b = loss(np.asarray(forecasts[against], dtype=float) - o)
    return block_bootstrap_pvalue(a, b, block_length=block,
                                  n_samples=cfg.bootstrap_samples, seed=seed)
