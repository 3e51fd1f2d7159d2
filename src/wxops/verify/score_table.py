"""The score table: every score wxops knows, named once.

Each :class:`Score` says how the ``scores`` package computes it, its perfect value, its
direction and its kind. Config (gate rules, monitor limits), verification, the report,
the gate, the release note and the monitor all read this table, so a new score is one
:func:`register_score` call (or one entry in :data:`SCORES`)::

    from wxops.verify.score_table import Score, register_score

    register_score(Score("sedi", kind="categorical", direction="higher", perfect=1.0,
                         function="symmetric_extremal_dependence_index",
                         description="symmetric extremal dependence index"))

The module imports nothing heavy: the ``scores`` functions are named by dotted path
and imported when a score is computed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["continuous", "categorical"]
"""``continuous``: one value per forecast set (``rmse``); ``categorical``: one value per
event threshold, named ``<score>_<threshold>`` (``ets_1000``)."""
Direction = Literal["higher", "lower", "closer"]
"""``higher``/``lower``: larger/smaller is better; ``closer``: closer to the perfect value is
better (bias, frequency bias), where no skill score is defined."""
Source = Literal["values", "contingency", "probability"]
"""What the ``scores`` function takes: forecast and observed values (``fn(fcst, obs)``), the
contingency table at a threshold (a method of ``scores``' contingency manager), or event
probabilities and observed events (``fn(prob, event)``; a continuous probability score
takes them at every threshold, rows x thresholds). Probability scores are computed by
``wxops.verify.probabilistic`` for probability models (not from values)."""


@dataclass(frozen=True)
class Counts:
    """A contingency table at one threshold."""

    hits: float
    misses: float
    false_alarms: float
    correct_negatives: float

    @property
    def observed(self) -> float:
        return self.hits + self.misses

    @property
    def forecast(self) -> float:
        return self.hits + self.false_alarms

    @property
    def n(self) -> float:
        return self.observed + self.false_alarms + self.correct_negatives


def _no_observed(c: Counts) -> str | None:
    return "no observed events" if c.observed == 0 else None


def _pss_undefined(c: Counts) -> str | None:
    if c.false_alarms + c.correct_negatives == 0 and c.observed > 0:
        return "every case is an event (no non-event to judge false alarms on)"
    return _no_observed(c)


def _no_forecast(c: Counts) -> str | None:
    return "no forecasts of the event" if c.forecast == 0 else None


def _no_events(c: Counts) -> str | None:
    return "no observed or forecast events" if c.observed + c.false_alarms == 0 else None


def _ets_undefined(c: Counts) -> str | None:
    if (why := _no_events(c)) is not None:
        return why
    if c.n > 0 and c.hits + c.misses + c.false_alarms - c.observed * c.forecast / c.n == 0:
        return "every case is an event (no skill measurable against chance)"
    return None


@dataclass(frozen=True)
class Score:
    """One score: what it is called, how it is computed and which way is better."""

    name: str
    kind: Kind
    direction: Direction
    perfect: float
    """Value of a perfect forecast (the skill formula's target; 0 for errors)."""
    function: str
    """``values``/``probability``: dotted path of a function in the ``scores`` package;
    ``contingency``: method name of ``scores``' ``BasicContingencyManager``."""
    description: str = ""
    source: Source | None = None
    """Default: ``values`` for continuous scores, ``contingency`` for categorical ones."""
    headline: bool = False
    """Shown where space is short: the scorecard, the replay and ``wxops verify`` tables,
    the monitor's plots. Every score is in the report's full tables either way."""
    live: bool = True
    """Whether the monitor computes it from forecasts and observations alone (a live rule
    may name it); probability scores need the climatological frequency and are not live."""
    undefined: Callable[[Counts], str | None] | None = None
    """Contingency scores: why the score is undefined (a zero denominator) for these
    counts, in words for the report ("no forecasts of the event"); None when defined."""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"score name {self.name!r}: use lower-case letters, digits and _")
        if self.source is None:
            object.__setattr__(self, "source",
                               "values" if self.kind == "continuous" else "contingency")
        allowed = (("values", "probability") if self.kind == "continuous"
                   else ("contingency", "probability"))
        if self.source not in allowed:
            raise ValueError(f"score {self.name!r}: a {self.kind} score is computed from "
                             f"{' or '.join(allowed)}, not {self.source}")

    @property
    def has_skill(self) -> bool:
        """Whether ``(score - reference) / (perfect - reference)`` is meaningful."""
        return self.direction != "closer"

    def better(self, value: float, reference: float) -> bool:
        """Whether ``value`` is strictly better than ``reference`` for this score."""
        return self.distance(value) < self.distance(reference)

    def distance(self, value: float) -> float:
        """How far ``value`` is from perfect, in the score's unit (0: perfect)."""
        if self.direction == "higher":
            return self.perfect - value
        if self.direction == "lower":
            return value - self.perfect
        return abs(value - self.perfect)

    def breaches_limit(self, value: float, limit: float) -> bool:
        """A limit is a floor on a higher-is-better score, a ceiling on a lower-is-better
        one, and the largest distance from perfect on a ``closer`` score (bias)."""
        if self.direction == "higher":
            return value < limit
        if self.direction == "lower":
            return value > limit
        return abs(value - self.perfect) > limit

    def resolve(self) -> Callable[..., Any]:
        """The ``scores`` function (``values``/``probability`` scores)."""
        if self.source == "contingency":
            raise TypeError(f"{self.name} is a contingency-table method: {self.function}")
        module, _, attr = self.function.rpartition(".")
        target: Any = importlib.import_module(module) if module else None
        if target is None:
            raise ValueError(f"score {self.name}: function {self.function!r} is not a dotted path")
        return getattr(target, attr)  # type: ignore[no-any-return]


SCORES: dict[str, Score] = {}
"""Every registered score by name, in report order."""


def register_score(score: Score) -> Score:
    """Add ``score`` to the table (an existing name is an error: each is named once)."""
    if score.name in SCORES:
        raise ValueError(f"score '{score.name}' is already registered")
    SCORES[score.name] = score
    return score


def unregister_score(name: str) -> None:
    """Remove a score (for plugins and tests that register one temporarily)."""
    SCORES.pop(name, None)


for _score in (
    Score("mae", headline=True, kind="continuous", direction="lower", perfect=0.0,
          function="scores.continuous.mae", description="mean absolute error"),
    Score("rmse", headline=True, kind="continuous", direction="lower", perfect=0.0,
          function="scores.continuous.rmse", description="root mean squared error"),
    Score("bias", headline=True, kind="continuous", direction="closer", perfect=0.0,
          function="scores.continuous.additive_bias", description="mean forecast - observation"),
    Score("correlation", headline=True, kind="continuous", direction="higher", perfect=1.0,
          function="scores.continuous.correlation.pearsonr", description="Pearson correlation"),
    Score("pod", kind="categorical", direction="higher", perfect=1.0,
          function="probability_of_detection", undefined=_no_observed,
          description="probability of detection"),
    Score("far", kind="categorical", direction="lower", perfect=0.0,
          function="false_alarm_ratio", undefined=_no_forecast,
          description="false alarm ratio"),
    Score("csi", kind="categorical", direction="higher", perfect=1.0,
          function="threat_score", undefined=_no_events,
          description="critical success index"),
    Score("ets", headline=True, kind="categorical", direction="higher", perfect=1.0,
          function="equitable_threat_score", undefined=_ets_undefined,
          description="equitable threat score"),
    Score("pss", headline=True, kind="categorical", direction="higher", perfect=1.0,
          function="peirce_skill_score", undefined=_pss_undefined,
          description="Peirce skill score"),
    Score("frequency_bias", kind="categorical", direction="closer", perfect=1.0,
          function="frequency_bias", undefined=_no_observed,
          description="forecast events / observed events"),
    Score("brier", kind="categorical", direction="lower", perfect=0.0,
          function="scores.probability.brier_score", source="probability", live=False,
          description="Brier score of the event probability"),
    Score("bss", kind="categorical", direction="higher", perfect=1.0,
          function="wxops.verify.probabilistic.brier_skill_score", source="probability",
          live=False, description="Brier skill score against the climatological event "
                                  "frequency of the non-test rows (0: no better than it)"),
    Score("auc", kind="categorical", direction="higher", perfect=1.0,
          function="scores.probability.roc_auc", source="probability", live=False,
          description="area under the ROC curve of the event probability (0.5: no "
                      "discrimination)"),
    # the CRPS with its threshold weight on the thresholds (wxops.verify.probabilistic):
    # the distribution between the thresholds is not forecast, so no CRPS in metres
    Score("rps", kind="continuous", direction="lower", perfect=0.0,
          function="wxops.verify.probabilistic.ranked_probability_score",
          source="probability", live=False,
          description="ranked probability score over the thresholds: the sum of their "
                      "Brier scores, the CRPS weighted by a unit mass at each threshold"),
):
    register_score(_score)

#: Contingency counts reported next to the categorical scores, in table order.
COUNTS: tuple[str, ...] = ("hits", "misses", "false_alarms", "correct_negatives")


def threshold_label(value: float) -> str:
    """``1000.0`` -> ``"1000"``: the suffix of categorical score names."""
    return f"{value:g}"


def scores_of(kind: Kind | None = None, *, source: Source | None = None,
              live: bool | None = None, headline: bool | None = None) -> list[Score]:
    """Registered scores, in table order, filtered by kind, source, liveness, headline."""
    return [s for s in SCORES.values()
            if (kind is None or s.kind == kind) and (source is None or s.source == source)
            and (live is None or s.live == live)
            and (headline is None or s.headline == headline)]


def names_of(kind: Kind | None = None, **filters: Any) -> list[str]:
    """Names of :func:`scores_of` (``names_of("continuous")`` -> ``["mae", "rmse", ...]``)."""
    return [s.name for s in scores_of(kind, **filters)]


def score_names(thresholds: Iterable[float], *, counts: tuple[str, ...] = (),
                **filters: Any) -> list[str]:
    """Column names of a verification for these thresholds: continuous names, then per
    threshold the ``counts`` asked for and ``<score>_<threshold>`` per categorical score.
    ``filters`` as in :func:`scores_of` (``live=True``: what the monitor has)."""
    labels = [threshold_label(t) for t in thresholds]
    categorical = [*counts, *names_of("categorical", **filters)]
    return [*names_of("continuous", **filters),
            *[f"{name}_{label}" for label in labels for name in categorical]]


def lookup(column: str) -> Score | None:
    """The score a column names: ``ets_1000`` -> ets, ``rmse`` -> rmse; None for counts
    (``hits_1000``, ``n``) and unknown names."""
    if column in SCORES:
        return SCORES[column]
    base, sep, _ = column.rpartition("_")
    while sep:
        if base in SCORES and SCORES[base].kind == "categorical":
            return SCORES[base]
        base, sep, _ = base.rpartition("_")
    return None


def base_score(column: str) -> str:
    """``ets_1000`` -> ``ets``; ``rmse`` -> ``rmse``; unknown names come back unchanged."""
    score = lookup(column)
    return column if score is None else score.name
