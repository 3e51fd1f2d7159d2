"""Settings of monitoring in operations (``monitor:`` in ``wxops.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from wxops.section import Section as _Section


def parse_duration(text: str) -> float:
    """``"7d"``, ``"6h"``, ``"30m"``, ``"90s"`` -> seconds (how windows are written)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
    value = text.strip().lower()
    if len(value) < 2 or value[-1] not in units:
        raise ValueError(f"duration {text!r}: write a number and a unit s/m/h/d/w, e.g. 7d or 6h")
    try:
        number = float(value[:-1])
    except ValueError as exc:
        raise ValueError(f"duration {text!r}: write a number and a unit s/m/h/d/w, e.g. 7d") from exc
    if number <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return number * units[value[-1]]


Duration = Annotated[str, Field(pattern=r"^\s*[0-9]+(\.[0-9]+)?\s*[smhdw]\s*$")]


class LiveScoreRule(_Section):
    """A live score that must stay near its level at promotion.

    The live value breaches the rule when it is worse than the promotion value by more
    than ``max_worse_pct`` percent (in the score's own orientation), or beyond the
    absolute ``limit`` when the version has no recorded promotion scores.
    """

    score: str = "rmse"
    max_worse_pct: float = Field(default=25.0, ge=0)
    limit: float | None = None
    """Absolute fallback, read by the score's direction in ``wxops.verify.score_table``:
    a floor on higher-is-better scores (ETS, POD, PSS...), a ceiling on lower-is-better
    ones (RMSE, FAR...), the largest distance from perfect on bias-like scores."""


class ProbabilityRule(_Section):
    """A live score of a probability version, per threshold.

    ``calibration`` (default): Spiegelhalter's test that the window's Brier score is what
    reliable forecasts would score (:func:`wxops.verify.probabilistic.calibration_test`),
    breached when its two-sided p-value is below ``alpha``. It needs no promotion value
    and does not move with the season's event frequency.

    ``brier``: the Brier score; ``reliability``: the reliability term of its Murphy
    decomposition (mean squared distance of the binned forecasts from the observed
    frequency: 0.01 is a forecast 0.1 off the diagonal on average). Breached when the
    live value is worse than at promotion by more than ``max_worse_pct`` percent or by
    more than ``max_increase`` (absolute), whichever is set; without promotion scores,
    when above the absolute ``limit``. Both move with the season: on the reference
    station "Brier 50 % worse" kept a perfectly reliable forecaster in alarm 15 % of the
    year, "reliability +0.01" 12 % (``benchmarks/bench_monitor_false_alarms.py``).
    """

    score: Literal["calibration", "brier", "reliability"] = "calibration"
    max_worse_pct: float | None = Field(default=None, ge=0)
    max_increase: float | None = Field(default=None, ge=0)
    limit: float | None = Field(default=None, ge=0)
    alpha: float = Field(default=0.01, gt=0, lt=1)
    """``calibration``: significance level of the test in each window."""
    lag_hours: float = Field(default=12.0, ge=0, le=168)
    """``calibration``: fog and low cloud persist for hours, so neighbouring hours are not
    independent; the test's variance counts autocorrelation over this many hours. A
    reliable-on-average model on the reference station was in alarm 47 % of the year with
    0 (as if independent), 12 % with 12 (``benchmarks/bench_monitor_false_alarms.py``)."""

    @model_validator(mode="after")
    def _some_limit(self) -> ProbabilityRule:
        if self.score == "calibration":
            if self.max_worse_pct is not None or self.max_increase is not None:
                raise ValueError("monitor.probability_rules: the 'calibration' rule is a "
                                 "test at level alpha; max_worse_pct and max_increase apply "
                                 "to 'brier' and 'reliability'")
        elif self.max_worse_pct is None and self.max_increase is None:
            raise ValueError(f"monitor.probability_rules: the '{self.score}' rule needs "
                             "max_worse_pct or max_increase")
        return self


def _default_probability_rules() -> list[ProbabilityRule]:
    # The calibration test judges each window against what its own forecasts promise, so
    # a foggy season does not raise it. The Brier (+50 %) and reliability (+0.01) rules
    # are not defaults: on the reference station they kept a reliable-on-average model in
    # alarm 31 % and 54 % of the year, and a perfectly reliable one 15 % and 12 %
    # (benchmarks/bench_monitor_false_alarms.py); the test: 12 % and 0.3 %.
    return [ProbabilityRule(score="calibration")]


def _default_live_rules() -> list[LiveScoreRule]:
    return [LiveScoreRule(score="rmse", max_worse_pct=25.0),
            LiveScoreRule(score="mae", max_worse_pct=25.0)]


class DriftConfig(_Section):
    """Input drift: PSI and KS per feature, against a season-aware training baseline and,
    where the observation files carry the same variable, against the observations."""

    features: list[str] | None = None
    """Features to watch; None: every numeric model input."""
    bins: int = Field(default=10, ge=3, le=100)
    month_window: int = Field(default=1, ge=0, le=6)
    """Baseline months: the live months and this many either side (circular)."""
    hour_window: int = Field(default=1, ge=0, le=12)
    """Baseline hours of day: the live hours and this many either side (circular)."""
    min_baseline_rows: int = Field(default=200, ge=10)
    training_margin: float = Field(default=1.25, ge=1.0)
    """Alert on the training baseline when PSI exceeds the largest PSI that the training
    data's own windows of the same length show, times this margin."""
    observed_psi: float = Field(default=0.2, gt=0)
    """Alert when inputs and the observations of the same variable at the same valid
    times differ by more than this PSI (0.1-0.25 is the usual 'moderate shift')."""
    observed_ks: float = Field(default=0.15, gt=0, le=1)


class MonitorConfig(_Section):
    """Monitoring in operations: live verification, drift, staleness, corrective action."""

    prediction_log: Path = Path("predictions.db")
    """The service's prediction log (SQLite file or Parquet folder), relative to the project."""
    window: Duration = "7d"
    step: Duration = "6h"
    """Rolling windows end every ``step``; consecutive windows count towards ``windows``."""
    max_windows: int = Field(default=120, ge=1, le=10_000)
    min_samples: int = Field(default=24, ge=1)
    """A window with fewer joined forecast/observation pairs is not scored."""
    windows: int = Field(default=3, ge=1, le=1000)
    """Consecutive windows a rule must be breached before it becomes an incident."""
    live_rules: list[LiveScoreRule] = Field(default_factory=_default_live_rules)
    probability_rules: list[ProbabilityRule] = Field(default_factory=_default_probability_rules)
    """Live rules of a probability version (its log holds ``p_below_1000``...), applied
    to every threshold; ``live_rules`` apply to versions that predict the value."""
    drift: DriftConfig = Field(default_factory=DriftConfig)
    max_observation_age: Duration = "6h"
    max_input_age: Duration = "6h"
    max_invalid_share: float = Field(default=0.05, ge=0, le=1)
    service_url: str | None = None
    """Base URL of ``wxops serve``; its ``/metrics`` gives the share of invalid requests."""
    action: Literal["none", "recommend_rollback", "retrain"] = "recommend_rollback"
    metrics_port: int = Field(default=9109, ge=0, le=65535)
    """Port of the monitor's own ``/metrics`` in ``--watch`` mode (0: any free port)."""

    @field_validator("window", "step", "max_observation_age", "max_input_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("probability_rules")
    @classmethod
    def _one_test(cls, rules: list[ProbabilityRule]) -> list[ProbabilityRule]:
        if sum(r.score == "calibration" for r in rules) > 1:
            raise ValueError("monitor.probability_rules: at most one 'calibration' rule (each "
                             "window is tested once)")
        return rules
