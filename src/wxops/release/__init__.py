"""The release cycle: quality gate, technical tests, replay, promotion, history, notes."""

from wxops.release.gate import GateResult, GateRow, evaluate_gate
from wxops.release.history import HistoryEntry, champion_at, rollback_target
from wxops.release.note import ChangeClass, bump_version, classify_change, release_note
from wxops.release.significance import block_bootstrap_pvalue

__all__ = [
    "ChangeClass",
    "GateResult",
    "GateRow",
    "HistoryEntry",
    "block_bootstrap_pvalue",
    "bump_version",
    "champion_at",
    "classify_change",
    "evaluate_gate",
    "release_note",
    "rollback_target",
]
