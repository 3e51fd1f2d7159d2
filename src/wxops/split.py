"""Time-blocked train/validation/test splits.

Whole blocks (months by default) go to one split, so no timestamp of one split falls
inside another and no lag, built within a block, reaches across. An optional gap drops
the hours next to each edge where two splits meet. The test block is for verification
only: fitting uses train, model selection uses validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from wxops.config import SplitConfig
from wxops.errors import SplitError

_BLOCK_FORMATS = {"month": "%Y-%m", "week": "%G-W%V", "day": "%Y-%m-%d", "year": "%Y"}


@dataclass(frozen=True)
class Split:
    """Three disjoint frames and which block went where."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    assignment: dict[str, str]
    """block label -> ``train`` | ``validation`` | ``test``, in block order."""
    rows_in_gaps: int = 0


def assign_blocks(frame: pd.DataFrame, cfg: SplitConfig) -> pd.DataFrame:
    """Return ``frame`` with a ``block`` column (kept if the source gave one)."""
    if "block" in frame.columns:
        return frame
    out = frame.copy()
    # local times (data.timezone): blocks are the station's calendar months/weeks, so a
    # year of local data gives no stray few-hour block at either end
    zone = frame.attrs.get("wxops", {}).get("local_time", {}).get("timezone")
    times = out["time"].dt.tz_convert(zone) if zone else out["time"]
    out["block"] = times.dt.strftime(_BLOCK_FORMATS[cfg.block])
    return out


def block_labels(times: pd.Series, block: str) -> pd.Series:
    """Block label (``2024-03`` for months...) of each time."""
    return pd.to_datetime(times, utc=True).dt.strftime(_BLOCK_FORMATS[block])


def split_by_init_time(frame: pd.DataFrame, cfg: SplitConfig) -> Split:
    """Split forecast rows by the block of their init time, without valid-time leaks.

    ``block`` must hold the init time's block. A forecast issued late in a training block
    can be valid inside the next (test) block; such rows are dropped (counted in
    ``rows_in_gaps``), so every valid time belongs to one split only.
    """
    for col in ("block", "valid_time"):
        if col not in frame.columns:
            raise SplitError(f"the NWP table has no '{col}' column")
    blocks = list(dict.fromkeys(frame["block"]))
    assignment = _assign(blocks, cfg)
    role = frame["block"].map(assignment)
    valid_role = block_labels(frame["valid_time"], cfg.block).map(assignment)
    keep = role == valid_role
    return _split(frame, role, keep, assignment, cfg, "supply more init times or shorter blocks")


def split_by_blocks(frame: pd.DataFrame, cfg: SplitConfig) -> Split:
    """Split ``frame`` (with ``time`` and ``block``) into train, validation and test."""
    if "block" not in frame.columns:
        raise SplitError("the table has no 'block' column; call assign_blocks first")
    blocks = list(dict.fromkeys(frame["block"]))  # order of first appearance
    assignment = _assign(blocks, cfg)
    role = frame["block"].map(assignment)
    keep = pd.Series(True, index=frame.index)
    if cfg.gap_hours:
        keep = ~_in_gap(frame, blocks, assignment, cfg.gap_hours)
    return _split(frame, role, keep, assignment, cfg,
                  f"supply more data or fewer/shorter blocks ({len(frame)} rows in {len(blocks)} blocks)")


def _split(frame: pd.DataFrame, role: pd.Series, keep: pd.Series, assignment: dict[str, str],
           cfg: SplitConfig, hint: str) -> Split:
    """The rows of each role that are kept; every split must have ``cfg.min_rows``."""
    parts = {
        name: frame.loc[(role == name) & keep].reset_index(drop=True)
        for name in ("train", "validation", "test")
    }
    for name, part in parts.items():
        if len(part) < cfg.min_rows:
            raise SplitError(
                f"the {name} split has {len(part)} rows, fewer than split.min_rows="
                f"{cfg.min_rows}; {hint}"
            )
    return Split(parts["train"], parts["validation"], parts["test"], assignment,
                 int((~keep).sum()))


def _assign(blocks: list[str], cfg: SplitConfig) -> dict[str, str]:
    n = len(blocks)
    if cfg.strategy == "explicit":
        unknown = sorted(set(cfg.validation_blocks + cfg.test_blocks) - set(blocks))
        if unknown:
            raise SplitError(f"split names blocks not in the data: {unknown} (data has {blocks})")
        both = sorted(set(cfg.validation_blocks) & set(cfg.test_blocks))
        if both:
            raise SplitError(f"blocks {both} are both validation and test")
        out = {b: "train" for b in blocks}
        out.update({b: "validation" for b in cfg.validation_blocks})
        out.update({b: "test" for b in cfg.test_blocks})
        return out
    if n < 3:
        raise SplitError(
            f"the data spans {n} {cfg.block} block(s); a split needs at least 3 "
            "(train, validation, test): supply more data or a shorter split.block"
        )
    if cfg.strategy == "interleaved":
        roles = []
        for i in range(n):
            pos = i % cfg.cycle
            roles.append("test" if pos == cfg.cycle - 1 else
                         "validation" if pos == cfg.cycle - 2 else "train")
        if "test" not in roles:
            roles[-1] = "test"
        if "validation" not in roles:
            roles[-2] = "validation"
        return dict(zip(blocks, roles, strict=True))
    n_test = max(1, round(n * cfg.test_fraction))
    n_val = max(1, round(n * cfg.validation_fraction))
    if n_test + n_val >= n:
        raise SplitError(f"{n} blocks are too few for the validation and test fractions")
    roles = ["train"] * (n - n_test - n_val) + ["validation"] * n_val + ["test"] * n_test
    return dict(zip(blocks, roles, strict=True))


def _in_gap(frame: pd.DataFrame, blocks: list[str], assignment: dict[str, str], hours: int) -> pd.Series:
    gap = pd.Timedelta(hours=hours)
    out = pd.Series(False, index=frame.index)
    grouped = frame.groupby("block")["time"]
    first, last = grouped.min(), grouped.max()
    for i, block in enumerate(blocks):
        rows = frame["block"] == block
        if i > 0 and assignment[blocks[i - 1]] != assignment[block]:
            out |= rows & (frame["time"] < first[block] + gap)
        if i + 1 < len(blocks) and assignment[blocks[i + 1]] != assignment[block]:
            out |= rows & (frame["time"] > last[block] - gap)
    return out
