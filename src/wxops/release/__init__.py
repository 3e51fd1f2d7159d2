"""The release cycle: quality gate, technical tests, replay, promotion, history, notes.

Names load on first use, so ``wxops --help`` and other commands stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wxops.release.gate import GateResult, GateRow, evaluate_gate
    from wxops.release.history import HistoryEntry, champion_at, rollback_target
    from wxops.release.note import ChangeClass, bump_version, classify_change, release_note
    from wxops.release.select import Selection, select_configuration
    from wxops.release.significance import (
        TestResult,
        block_bootstrap_pvalue,
        block_bootstrap_test,
        dm_hln_test,
    )

_EXPORTS: dict[str, str] = {
    "ChangeClass": "wxops.release.note",
    "GateResult": "wxops.release.gate",
    "GateRow": "wxops.release.gate",
    "HistoryEntry": "wxops.release.history",
    "block_bootstrap_pvalue": "wxops.release.significance",
    "block_bootstrap_test": "wxops.release.significance",
    "dm_hln_test": "wxops.release.significance",
    "TestResult": "wxops.release.significance",
    "Selection": "wxops.release.select",
    "select_configuration": "wxops.release.select",
    "bump_version": "wxops.release.note",
    "champion_at": "wxops.release.history",
    "classify_change": "wxops.release.note",
    "evaluate_gate": "wxops.release.gate",
    "release_note": "wxops.release.note",
    "rollback_target": "wxops.release.history",
}

__all__ = [
    "ChangeClass",
    "GateResult",
    "GateRow",
    "HistoryEntry",
    "Selection",
    "TestResult",
    "block_bootstrap_pvalue",
    "block_bootstrap_test",
    "bump_version",
    "champion_at",
    "classify_change",
    "dm_hln_test",
    "evaluate_gate",
    "release_note",
    "rollback_target",
    "select_configuration",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
