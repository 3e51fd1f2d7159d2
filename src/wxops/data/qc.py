"""Quality control of observations: one table of rules (:data:`QC_TABLE`), counted per rule.

The same rules, read from the same ``qc:`` settings, check tabular observations
(:func:`apply_qc`) and the station observations an NWP table is joined with
(:func:`wxops.data.nwp_table.clean_obs`): :func:`flag_values` and :func:`flag_times`
apply them to one column and to the times.

"used variables" are the target and the predictors. With ``qc.action: drop`` flagged rows
are removed; with ``keep`` they stay, with their rules listed in a ``qc_flags`` column.
Either way the :class:`QCReport` counts every rule, so nothing is dropped silently.

Whole columns: a predictor whose rows one rule flags in more than ``qc.max_column_share``
of the rows (a stuck sensor, an empty or all-sentinel column) would otherwise take
most of the table with it; it is removed from the predictors instead (``qc.column_action:
drop``, the default) or stops the run (``refuse``), and the report names the column, the
rule and the count. The target is never dropped. When the rows dropped would exceed
``qc.max_drop_share``, or the target has no valid value left, the run stops with the
column, the rule, the count and the likely cause ("t2m out of range in 6144 rows: are
the units degF?").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from wxops.config import FeaturesConfig, QCConfig
from wxops.errors import DataQualityError, DataSourceError


@dataclass(frozen=True)
class Variable:
    """A physical variable as wxops names it, with its unit and plausible range."""

    name: str
    units: str
    low: float
    high: float
    stuck_check: bool = False
    typical_median: tuple[float, float] | None = None
    """Where the median of a station's record lies in these units; far outside it the
    values are in other units (visibility in miles, temperature in degF), even when each
    value passes the range rule."""


#: wxops' variable names, units and physical ranges (WMO-plausible surface values).
VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("t2m", "degC", -80.0, 60.0, stuck_check=True, typical_median=(-45.0, 40.0)),
        Variable("td2m", "degC", -90.0, 40.0, stuck_check=True, typical_median=(-55.0, 35.0)),
        Variable("rh", "%", 0.0, 100.0),
        Variable("pressure", "hPa", 500.0, 1100.0, stuck_check=True),
        Variable("wind_speed", "m s-1", 0.0, 75.0),
        Variable("wind_dir", "degree", 0.0, 360.0),
        Variable("total_cloud", "tenths", 0.0, 10.0),
        Variable("opaque_cloud", "tenths", 0.0, 10.0),
        Variable("visibility", "m", 0.0, 100_000.0, typical_median=(200.0, 100_000.0)),
        Variable("precip", "mm", 0.0, 300.0),
    )
}

@dataclass(frozen=True)
class QCRule:
    """One quality-control rule: what it flags, where, and the likely cause to name when
    it flags many rows."""

    name: str
    flags: str
    """When a row is flagged."""
    applies_to: Literal["values", "time"]
    """``values``: each used variable (the target and the predictors); ``time``: the times."""
    cause: str = ""
    flags_rows: bool = True
    """False for rules that are counted but flag no row (a gap: no row is wrong)."""
    usable: bool = False
    """Whether a flagged value can still be used (``qc.action: keep`` keeps it)."""


#: Every QC rule, in the order they are checked and reported.
QC_TABLE: dict[str, QCRule] = {r.name: r for r in (
    QCRule("sentinel", "a value equals a missing-value code (``qc.sentinels``)", "values",
           ": missing-value codes (qc.sentinels)"),
    QCRule("missing", "a value is missing (NaN, or a sentinel)", "values",
           ": the column is empty or missing (missing markers: data.na_values)"),
    QCRule("range", "a value lies outside its physical range (``VARIABLES``, ``qc.ranges``)",
           "values", usable=True),
    QCRule("bad_time", "the time is missing, or a local time that does not exist or cannot "
           "be resolved (``data.timezone``)", "time",
           ": times missing or not valid local times (data.timezone)"),
    QCRule("duplicate_time", "the time repeats an earlier row of the same station (the "
           "first is kept)", "time",
           ": repeated times (local time with daylight saving? set data.timezone)"),
    QCRule("constant_run", "a value stays identical for ``qc.max_constant_hours`` hours in a "
           "row (a stuck sensor; variables with ``stuck_check``)", "values",
           ": the value never changes (a stuck sensor?)", usable=True),
    QCRule("gap", "the step to the previous row in the same block exceeds "
           "``qc.max_gap_hours`` (counted, no row flagged)", "time", flags_rows=False),
)}

#: Rules that flag rows; ``gap`` is counted apart since no row is wrong.
ROW_RULES: tuple[str, ...] = tuple(r.name for r in QC_TABLE.values() if r.flags_rows)
QC_RULES: tuple[str, ...] = tuple(QC_TABLE)


def qc_ranges(cfg: QCConfig) -> dict[str, tuple[float, float]]:
    """Physical range per variable: :data:`VARIABLES`, overridden by ``qc.ranges``."""
    ranges = {name: (v.low, v.high) for name, v in VARIABLES.items()}
    ranges.update({k: (float(lo), float(hi)) for k, (lo, hi) in cfg.ranges.items()})
    return ranges


def flag_values(values: pd.Series, variable: str, time: pd.Series, cfg: QCConfig, *,
                groups: pd.Series | None = None) -> tuple[pd.Series, dict[str, pd.Series]]:
    """The ``values`` rules of :data:`QC_TABLE` on one numeric column of ``variable``.

    Returns the values with sentinels as NaN and one boolean mask per rule that applies.
    ``groups`` (e.g. the station per row): stuck-sensor runs are found within each group.
    """
    sentinel = values.isin(cfg.sentinels)
    values = values.mask(sentinel).astype("float64")
    missing = values.isna()
    hits = {"sentinel": sentinel, "missing": missing}
    ranges = qc_ranges(cfg)
    if variable in ranges:
        low, high = ranges[variable]
        hits["range"] = ~missing & ((values < low) | (values > high))
    if variable in VARIABLES and VARIABLES[variable].stuck_check:
        if groups is None:
            hits["constant_run"] = _constant_runs(values, time, cfg.max_constant_hours)
        else:
            runs = [_constant_runs(values[idx], time[idx], cfg.max_constant_hours)
                    for idx in groups.groupby(groups.to_numpy()).groups.values()]
            hits["constant_run"] = (pd.concat(runs).reindex(values.index, fill_value=False)
                                    if runs else pd.Series(False, index=values.index))
    return values, hits


def flag_times(time: pd.Series, *, keys: pd.DataFrame | None = None) -> dict[str, pd.Series]:
    """The row-flagging ``time`` rules of :data:`QC_TABLE`; a time repeats only within the
    same ``keys`` (e.g. the station)."""
    bad_time = time.isna()
    frame = time.to_frame("time") if keys is None else pd.concat([keys, time.rename("time")], axis=1)
    duplicate = frame.duplicated(keep="first") & ~bad_time
    return {"bad_time": bad_time, "duplicate_time": duplicate}


@dataclass
class QCReport:
    """Counts of every QC rule: ``rows_flagged`` per rule, and per rule and column."""

    rows_in: int
    rows_out: int
    action: str
    rows_flagged: dict[str, int] = field(default_factory=dict)
    by_column: dict[str, dict[str, int]] = field(default_factory=dict)
    gaps: int = 0
    gap_hours_missing: float = 0.0
    columns_dropped: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns_dropped": {k: dict(v) for k, v in self.columns_dropped.items()},
            "messages": list(self.messages),
            "source": dict(self.source),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "action": self.action,
            "rows_flagged": dict(self.rows_flagged),
            "by_column": {k: dict(v) for k, v in self.by_column.items()},
            "gaps": self.gaps,
            "gap_hours_missing": self.gap_hours_missing,
        }


def apply_qc(
    frame: pd.DataFrame, columns: list[str], cfg: QCConfig, *, target: str | None = None
) -> tuple[pd.DataFrame, QCReport]:
    """Check ``columns`` of ``frame`` against the rules; drop or mark the flagged rows.

    Sentinel values become NaN in both modes. With ``target`` given, the other columns
    are predictors that may be removed whole (module docstring); without it no column
    is. Returns the cleaned table and the report.

    Raises:
        DataSourceError: a named column is absent or holds non-numeric values.
        DataQualityError: a refused predictor, a target flagged beyond repair, or more
            than ``max_drop_share`` of the rows dropped; the message names column, rule,
            count and the likely cause.
    """
    notes = dict(frame.attrs.get("wxops", {}))
    file_columns: dict[str, str] = dict(notes.get("file_columns", {}))
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        present = [c for c in frame.columns if c not in ("time", "block")]
        raise DataSourceError(
            f"data lacks the columns {absent} named by the config (present: "
            f"{[_label(c, file_columns) for c in present]}); "
            "rename them with data.columns or remove them from features.predictors"
        )
    data = frame.copy()
    n_rows = len(data)
    ranges = qc_ranges(cfg)

    per_column: dict[str, dict[str, pd.Series]] = {}
    for col in columns:
        values = pd.to_numeric(data[col], errors="coerce")
        non_numeric = values.isna() & data[col].notna()
        if non_numeric.any():
            example = data.loc[non_numeric, col].iloc[0]
            raise DataSourceError(
                f"column {_label(col, file_columns)} holds non-numeric values such as "
                f"{example!r} ({int(non_numeric.sum())} cells); if that marks a missing "
                "value, declare it with data.na_values")
        data[col], per_column[col] = flag_values(values, col, data["time"], cfg)

    _check_units_plausible(data, columns, cfg, file_columns)
    report = QCReport(rows_in=n_rows, rows_out=0, action=cfg.action, source=notes)
    kept_columns = list(columns)
    if target is not None and n_rows:
        for col in columns:
            if col == target:
                continue
            union = pd.concat(list(per_column[col].values()), axis=1).any(axis=1)
            if union.sum() <= cfg.max_column_share * n_rows:
                continue
            rule, count = _worst_rule(per_column[col])
            why = _cause(rule, col, data[col], ranges)
            text = (f"{_label(col, file_columns)}: rule {rule} flags {count} of {n_rows} rows"
                    f"{why}")
            if cfg.column_action == "refuse":
                raise DataQualityError(
                    f"predictor {text}; remove it from features.predictors, fix the file, or "
                    "set qc.column_action: drop to train without it")
            report.columns_dropped[col] = {"rule": rule, "rows": count,
                                           "file_column": file_columns.get(col, col)}
            report.messages.append(f"predictor {text}: dropped from the predictors "
                                   "(qc.column_action: drop)")
            kept_columns.remove(col)
            data = data.drop(columns=[col])

    flags: dict[str, pd.Series] = {r: pd.Series(False, index=data.index) for r in ROW_RULES}
    by_column: dict[str, dict[str, int]] = {r: {} for r in ROW_RULES}
    for col in kept_columns:
        for rule, hit in per_column[col].items():
            _mark(flags, by_column, rule, col, hit)
    for rule, hit in flag_times(data["time"]).items():
        _mark(flags, by_column, rule, "time", hit)
    gaps, gap_hours = _count_gaps(data, cfg.max_gap_hours)

    flagged = pd.concat([flags[r] for r in ROW_RULES], axis=1).any(axis=1)
    report.rows_flagged = {r: int(flags[r].sum()) for r in ROW_RULES}
    report.by_column = {r: c for r, c in by_column.items() if c}
    report.gaps = gaps
    report.gap_hours_missing = gap_hours
    n_flagged = int(flagged.sum())
    if n_rows and n_flagged > cfg.max_drop_share * n_rows:
        col, rule, count = _worst(by_column)
        values = data[col] if col in data.columns else None
        text = (f"QC flags {n_flagged} of {n_rows} rows; most by rule {rule} in "
                f"{_label(col, file_columns)}: {count} rows{_cause(rule, col, values, ranges)}")
        if cfg.action == "drop":
            raise DataQualityError(
                f"{text}; fix the data or the config (data.units, data.na_values, qc.ranges, "
                "qc.sentinels), or raise qc.max_drop_share if this is expected")
        report.messages.append(text)
    if cfg.action == "drop":
        data = data.loc[~flagged]
    else:
        names = pd.concat({r: flags[r] for r in ROW_RULES}, axis=1)
        data["qc_flags"] = names.apply(lambda row: ",".join(row.index[row.to_numpy()]), axis=1)
    report.rows_out = len(data)
    data = data.reset_index(drop=True)
    data.attrs["wxops"] = notes
    return data, report


def _check_units_plausible(data: pd.DataFrame, columns: list[str], cfg: QCConfig,
                           file_columns: dict[str, str]) -> None:
    """Stop when a column's median is implausible in wxops' units (module docstring of
    :mod:`wxops.data.units`); ``qc.ranges`` for the column switches the check off."""
    from wxops.data.units import likely_units_by_median

    for col in columns:
        var = VARIABLES.get(col)
        if var is None or var.typical_median is None or col in cfg.ranges:
            continue
        values = data[col].to_numpy(dtype="float64", na_value=np.nan)
        if np.isfinite(values).sum() < 24:
            continue
        median = float(np.nanmedian(values))
        low, high = var.typical_median
        if low <= median <= high:
            continue
        units = likely_units_by_median(values, col, var.units, low, high)
        cause = (f": are the units {' or '.join(units)}? declare them with data.units "
                 f"({{{col}: {units[0]}}})") if units else "; check data.units and data.columns"
        raise DataQualityError(
            f"{_label(col, file_columns)}: median {median:g} {var.units} is implausible for a "
            f"station record (expected within [{low:g}, {high:g}] {var.units}){cause}; if the "
            f"values are right, set qc.ranges for {col}")


def features_after_qc(features: FeaturesConfig, report: QCReport) -> FeaturesConfig:
    """The features config without the predictors QC dropped, and without derived
    features that need them (dew-point depression without ``t2m``...)."""
    dropped = set(report.columns_dropped)
    if not dropped:
        return features
    needs = {"dewpoint_depression": {"t2m", "td2m"}, "wind_components": {"wind_speed", "wind_dir"}}
    return features.model_copy(update={
        "predictors": [p for p in features.predictors if p not in dropped],
        "derived": [d for d in features.derived if not (needs.get(d, set()) & dropped)],
    })


def check_target(frame: pd.DataFrame, target: str, report: QCReport | None = None) -> None:
    """Refuse a table whose target column holds no valid value at all, naming the rule
    that removed them."""
    if target not in frame.columns or frame[target].notna().sum() == 0:
        cause = ""
        if report is not None and report.by_column:
            col, rule, count = _worst(report.by_column)
            cause = f" (most rows went by rule {rule} in column '{col}': {count} rows)"
        raise DataQualityError(
            f"target '{target}' has no valid value after quality control{cause}; "
            "check data.path, data.columns, data.units, data.na_values and qc.sentinels"
        )


def _label(col: str, file_columns: dict[str, str]) -> str:
    """``'pressure' (file column 'Pressure (mbar)')``: the wxops name and the user's."""
    original = file_columns.get(col)
    if original is None or original == col:
        return f"'{col}'"
    return f"'{col}' (file column '{original}')"


#: Which rule to name when several flag as many rows: the most specific cause first
#: (a sentinel is also "missing"; a stuck run is a better clue than a range).
_SPECIFIC = ("constant_run", "range", "sentinel", "bad_time", "duplicate_time", "missing")


def _worst_rule(hits: dict[str, pd.Series]) -> tuple[str, int]:
    counts = {r: int(h.sum()) for r, h in hits.items()}
    rule = max(counts, key=lambda r: (counts[r], -_SPECIFIC.index(r)))
    return rule, counts[rule]


def _worst(by_column: dict[str, dict[str, int]]) -> tuple[str, str, int]:
    found = [(count, -_SPECIFIC.index(rule), col, rule)
             for rule, cols in by_column.items() for col, count in cols.items()]
    if not found:
        return "time", "duplicate_time", 0
    count, _, col, rule = max(found)
    return col, rule, count


def _cause(rule: str, col: str, values: pd.Series | None,
           ranges: dict[str, tuple[float, float]]) -> str:
    """The likely cause of a rule flagging many rows, as ``": are the units degF?"``."""
    if rule == "range" and values is not None and col in VARIABLES and col in ranges:
        from wxops.data.units import guess_unit

        low, high = ranges[col]
        unit = guess_unit(values.to_numpy(dtype="float64", na_value=np.nan), col,
                          VARIABLES[col].units, low, high)
        if unit is not None:
            return (f": are the units {unit}? declare them with data.units "
                    f"({{{col}: {unit}}})")
        return f": values outside [{low:g}, {high:g}] {VARIABLES[col].units}; check data.units"
    return QC_TABLE[rule].cause if rule in QC_TABLE else ""


def _mark(
    flags: dict[str, pd.Series],
    by_column: dict[str, dict[str, int]],
    rule: str,
    col: str,
    hit: pd.Series,
) -> None:
    count = int(hit.sum())
    if count:
        flags[rule] = flags[rule] | hit
        by_column[rule][col] = count


def _constant_runs(values: pd.Series, time: pd.Series, min_hours: int) -> pd.Series:
    """Rows in a run of identical values spanning at least ``min_hours`` (hour-inclusive)."""
    run_id = (values != values.shift()).cumsum()
    grouped = time.groupby(run_id)
    span = (grouped.transform("max") - grouped.transform("min")).dt.total_seconds() / 3600 + 1
    return (span >= min_hours) & values.notna()


def _count_gaps(data: pd.DataFrame, max_gap_hours: float) -> tuple[int, float]:
    keys = data["block"] if "block" in data.columns else pd.Series(0, index=data.index)
    step = data["time"].groupby(keys.to_numpy()).diff().dt.total_seconds() / 3600.0
    gap = step > max_gap_hours
    return int(gap.sum()), float(np.round((step[gap] - 1.0).sum(), 3))
