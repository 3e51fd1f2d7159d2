"""Quality control of observations: a documented table of rules, counted per rule.

=================  =====================================================  ===============
rule               flags a row when                                       applies to
=================  =====================================================  ===============
``sentinel``       a value equals a missing-value code (-9900, -9999...)  used variables
``missing``        a value is missing (NaN, or a sentinel)                used variables
``range``          a value lies outside its physical range (VARIABLES)    used variables
``duplicate_time`` the timestamp repeats an earlier row (first is kept)   time
``constant_run``   a value stays identical for ``max_constant_hours``     variables marked
                   hours in a row (a stuck sensor)                         ``stuck_check``
``gap``            the step to the previous row in the same block         time (counted,
                   exceeds ``max_gap_hours``                              rows not flagged)
=================  =====================================================  ===============

"used variables" are the target and the predictors. With ``qc.action: drop`` flagged rows
are removed; with ``keep`` they stay, with their rules listed in a ``qc_flags`` column.
Either way the :class:`QCReport` counts every rule, so nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wxops.config import QCConfig
from wxops.errors import DataQualityError, DataSourceError


@dataclass(frozen=True)
class Variable:
    """A physical variable as wxops names it, with its unit and plausible range."""

    name: str
    units: str
    low: float
    high: float
    stuck_check: bool = False


#: wxops' variable names, units and physical ranges (WMO-plausible surface values).
VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("t2m", "degC", -80.0, 60.0, stuck_check=True),
        Variable("td2m", "degC", -90.0, 40.0, stuck_check=True),
        Variable("rh", "%", 0.0, 100.0),
        Variable("pressure", "hPa", 500.0, 1100.0, stuck_check=True),
        Variable("wind_speed", "m s-1", 0.0, 75.0),
        Variable("wind_dir", "degree", 0.0, 360.0),
        Variable("total_cloud", "tenths", 0.0, 10.0),
        Variable("opaque_cloud", "tenths", 0.0, 10.0),
        Variable("visibility", "m", 0.0, 100_000.0),
        Variable("precip", "mm", 0.0, 300.0),
    )
}

#: Rules that flag rows; ``gap`` is counted apart since no row is wrong.
ROW_RULES: tuple[str, ...] = ("sentinel", "missing", "range", "duplicate_time", "constant_run")
QC_RULES: tuple[str, ...] = (*ROW_RULES, "gap")


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "action": self.action,
            "rows_flagged": dict(self.rows_flagged),
            "by_column": {k: dict(v) for k, v in self.by_column.items()},
            "gaps": self.gaps,
            "gap_hours_missing": self.gap_hours_missing,
        }


def apply_qc(
    frame: pd.DataFrame, columns: list[str], cfg: QCConfig
) -> tuple[pd.DataFrame, QCReport]:
    """Check ``columns`` of ``frame`` against the rules; drop or mark the flagged rows.

    Sentinel values become NaN in both modes. Returns the cleaned table and the report.
    """
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise DataSourceError(
            f"data lacks the columns {absent} named by the config (present: "
            f"{[c for c in frame.columns if c not in ('time', 'block')]}); "
            "rename them with data.columns"
        )
    data = frame.copy()
    flags: dict[str, pd.Series] = {r: pd.Series(False, index=data.index) for r in ROW_RULES}
    by_column: dict[str, dict[str, int]] = {r: {} for r in ROW_RULES}
    ranges = {name: (v.low, v.high) for name, v in VARIABLES.items()}
    ranges.update({k: (float(lo), float(hi)) for k, (lo, hi) in cfg.ranges.items()})

    for col in columns:
        values = pd.to_numeric(data[col], errors="coerce")
        non_numeric = values.isna() & data[col].notna()
        if non_numeric.any():
            example = data.loc[non_numeric, col].iloc[0]
            raise DataSourceError(f"column '{col}' holds non-numeric values such as {example!r}")
        sentinel = values.isin(cfg.sentinels)
        values = values.mask(sentinel)
        data[col] = values
        missing = values.isna()
        _mark(flags, by_column, "sentinel", col, sentinel)
        _mark(flags, by_column, "missing", col, missing)
        if col in ranges:
            low, high = ranges[col]
            _mark(flags, by_column, "range", col, ~missing & ((values < low) | (values > high)))
        if col in VARIABLES and VARIABLES[col].stuck_check:
            _mark(flags, by_column, "constant_run", col,
                  _constant_runs(values, data["time"], cfg.max_constant_hours))

    dup = data["time"].duplicated(keep="first")
    _mark(flags, by_column, "duplicate_time", "time", dup)
    gaps, gap_hours = _count_gaps(data, cfg.max_gap_hours)

    flagged = pd.concat([flags[r] for r in ROW_RULES], axis=1).any(axis=1)
    report = QCReport(
        rows_in=len(frame),
        rows_out=0,
        action=cfg.action,
        rows_flagged={r: int(flags[r].sum()) for r in ROW_RULES},
        by_column={r: c for r, c in by_column.items() if c},
        gaps=gaps,
        gap_hours_missing=gap_hours,
    )
    if cfg.action == "drop":
        data = data.loc[~flagged]
    else:
        names = pd.concat({r: flags[r] for r in ROW_RULES}, axis=1)
        data["qc_flags"] = names.apply(lambda row: ",".join(row.index[row.to_numpy()]), axis=1)
    report.rows_out = len(data)
    return data.reset_index(drop=True), report


def check_target(frame: pd.DataFrame, target: str) -> None:
    """Refuse a table whose target column holds no valid value at all."""
    if target not in frame.columns or frame[target].notna().sum() == 0:
        raise DataQualityError(
            f"target '{target}' has no valid value after quality control; "
            "check data.path, data.columns and the qc.sentinels"
        )


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
