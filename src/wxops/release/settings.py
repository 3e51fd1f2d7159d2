"""Settings of the quality gate (``gate:`` in ``wxops.yaml``).

Which scores a rule may name is checked where the whole file is known
(``wxops.config.WxopsConfig``), against ``wxops.verify.score_table`` and
``verify.thresholds``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from wxops.section import Section as _Section

#: Forecasts a gate rule can compare the candidate with.
GATE_REFERENCES: tuple[str, ...] = ("climatology", "persistence", "nwp", "champion")


class GateRule(_Section):
    """One rule of the quality gate: the candidate's ``score`` against a reference forecast.

    Set exactly one of ``min_skill`` (skill = 1 - score/score_reference for error scores,
    (score - ref)/(1 - ref) for scores whose perfect value is 1; must exceed it) or
    ``max_worse_pct`` (the candidate may be worse than the reference by at most this many
    percent, in the score's own orientation).
    """

    score: str
    """A score name: ``rmse``, ``mae``, ``correlation`` or e.g. ``ets_1000``, ``pod_5000``."""
    against: Literal["climatology", "persistence", "nwp", "champion"]
    min_skill: float | None = None
    max_worse_pct: float | None = Field(default=None, ge=0)
    alpha: float | None = Field(default=None, gt=0, lt=1)
    """Significance level: a ``min_skill`` rule then also needs p < alpha that the candidate
    is better, and a ``max_worse_pct`` rule fails only when it is significantly worse.
    rmse/mae: Diebold-Mariano (HLN); ETS, PSS...: block bootstrap (see
    ``wxops.release.significance``)."""
    min_events: int | None = Field(default=None, ge=1)
    """Categorical scores: fewest observed events (``gate.min_events`` when unset) for the
    rule to decide; with fewer it says "too few events (n=...)" and neither passes nor
    fails."""

    @model_validator(mode="after")
    def _one_criterion(self) -> GateRule:
        if (self.min_skill is None) == (self.max_worse_pct is None):
            raise ValueError(
                f"gate rule on '{self.score}' vs {self.against}: set exactly one of "
                "min_skill or max_worse_pct"
            )
        return self

    @property
    def label(self) -> str:
        """Short human name, e.g. ``rmse vs climatology: skill > 0``."""
        if self.min_skill is not None:
            return f"{self.score} vs {self.against}: skill > {self.min_skill:g}"
        return f"{self.score} vs {self.against}: at most {self.max_worse_pct:g} % worse"


def _default_rules() -> list[GateRule]:
    # Fog and low visibility decide as much as the error in metres: the categorical rules
    # ask for skill over persistence (lead-time mode) and no significant loss against the
    # champion, each only where the test block has enough events to judge.
    return [
        GateRule(score="rmse", against="climatology", min_skill=0.0, alpha=0.05),
        GateRule(score="rmse", against="persistence", min_skill=0.0),
        GateRule(score="ets_1000", against="persistence", min_skill=0.0),
        GateRule(score="ets_5000", against="persistence", min_skill=0.0),
        GateRule(score="rmse", against="champion", max_worse_pct=2.0, alpha=0.05),
        GateRule(score="ets_1000", against="champion", max_worse_pct=10.0, alpha=0.05),
        GateRule(score="ets_5000", against="champion", max_worse_pct=10.0, alpha=0.05),
    ]


class ProbabilityGateConfig(_Section):
    """Gate rules of probability models (``wxops.release.probability_gate``), per threshold.

    Brier skill against the climatological event frequency must exceed ``min_bss`` with
    p < ``alpha`` (Diebold-Mariano on the per-case Brier scores, as rmse rules); against a
    champion probability model the Brier score may be at most ``max_worse_pct`` worse
    unless that is not significant; the reliability rule fails when a probability bin with
    at least ``reliability_min_cases`` cases has its observed frequency outside the
    interval a reliable forecaster stays in, at family-wise false-alarm rate
    ``reliability_alpha`` over the bins tested."""

    min_bss: float = 0.0
    max_worse_pct: float = Field(default=5.0, ge=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    reliability_alpha: float = Field(default=0.01, gt=0, lt=1)
    reliability_min_cases: int = Field(default=30, ge=5)
    min_events: int = Field(default=25, ge=1)
    """Fewest observed events for a rule at a threshold to decide. 25: with fewer, the
    Diebold-Mariano test of a calibrated forecaster with Brier skill about 0.2 against
    climatology passes less than about 80 % of the time (43 % at 12 events), so the rule
    would decide by chance (``benchmarks/bench_probability_gate_power.py``)."""


class GateConfig(_Section):
    """The quality gate between a registered version and the ``champion`` alias."""

    rules: list[GateRule] = Field(default_factory=_default_rules)
    probability: ProbabilityGateConfig = Field(default_factory=ProbabilityGateConfig)
    bootstrap_block_hours: int | None = Field(default=None, ge=1)
    """Block length of the block bootstrap in hours; None (default): chosen from the data
    (twice the Politis-White automatic length, see ``wxops.release.significance``)."""
    bootstrap_samples: int = Field(default=1000, ge=100, le=100_000)
    replay_cycle_hours: int = Field(default=1, ge=1, le=24)
    """Forecast-cycling replay: one forecast cycle every this many hours. 1: every hour of
    the test block (rare events need every case); 6: 00/06/12/18 UTC."""
    min_events: int = Field(default=10, ge=1)
    """Fewest observed events a categorical rule needs to decide (rules may override)."""
    latency_budget_ms: float = Field(default=2000.0, gt=0)
    """Technical test: most milliseconds one batch prediction may take."""
    latency_batch_rows: int = Field(default=256, ge=1)
