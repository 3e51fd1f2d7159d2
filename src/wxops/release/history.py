"""The append-only alias history: entries, and what they say about the past.

MLflow keeps only the current holder of an alias. wxops appends one entry per alias
change (and per refused attempt) to the registered model's tags, so these pure
functions can answer "which version was champion at T?" and "what do we roll back to?".
"""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import asdict, dataclass
from typing import Any

from wxops import tracking
from wxops.errors import ReleaseError

#: Actions that changed the champion alias.
CHAMPION_CHANGES: frozenset[str] = frozenset({"register", "promote", "rollback"})


@dataclass(frozen=True)
class HistoryEntry:
    """One alias change or refused attempt."""

    time: str
    """UTC, ISO 8601 with seconds, e.g. ``2026-11-26T06:00:00+00:00``."""
    user: str
    action: str
    """``register`` (first champion), ``promote``, ``rollback`` or ``rejected``."""
    alias: str
    from_version: str | None
    to_version: str | None
    reason: str
    gate: str
    """``pass``, ``fail``, ``forced``, ``technical-fail`` or ``n/a``."""
    forced: bool
    seq: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        fields: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        fields["seq"] = int(data.get("seq") or 0)
        fields["forced"] = bool(data.get("forced"))
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def now_utc() -> str:
    """The current time as stored in history entries."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def current_user() -> str:
    """Who is acting: ``WXOPS_USER`` if set (CI, services), else the login name."""
    import os

    return os.environ.get("WXOPS_USER") or getpass.getuser()


def parse_time(text: str) -> dt.datetime:
    """Parse an ISO time such as ``2026-11-26T06:00Z``; naive times are taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReleaseError(
            f"cannot read time {text!r}; use ISO 8601, e.g. 2026-11-26T06:00Z"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def champion_at(entries: list[HistoryEntry], when: dt.datetime) -> str | None:
    """The version that held ``champion`` at ``when`` (None: no champion yet)."""
    holder = None
    for entry in sorted(entries, key=lambda e: e.seq):
        if entry.action in CHAMPION_CHANGES and parse_time(entry.time) <= when:
            holder = entry.to_version
    return holder


def champion_stack(entries: list[HistoryEntry]) -> list[str]:
    """Champions in the order they took over, with rolled-back ones popped off."""
    stack: list[str] = []
    for entry in sorted(entries, key=lambda e: e.seq):
        if entry.action in ("register", "promote") and entry.to_version is not None:
            stack.append(entry.to_version)
        elif entry.action == "rollback" and stack:
            stack.pop()
            if entry.to_version is not None and (not stack or stack[-1] != entry.to_version):
                stack.append(entry.to_version)
    return stack


def rollback_target(entries: list[HistoryEntry], current: str | None) -> str:
    """The champion before ``current``; ReleaseError when there is none."""
    stack = champion_stack(entries)
    if current is None:
        raise ReleaseError("there is no champion to roll back")
    if not stack or stack[-1] != current:
        # The alias was moved outside wxops: fall back to the last other champion.
        others = [v for v in stack if v != current]
        if others:
            return others[-1]
        raise ReleaseError(f"no previous champion recorded before version {current}")
    if len(stack) < 2:
        raise ReleaseError(
            f"version {current} is the first champion in the history; nothing to roll back to"
        )
    return stack[-2]


def record_alias_change(name: str, action: str, *, previous: str | None, target: str | None, reason: str,
            gate: str, forced: bool) -> None:
    """Append one change of the champion alias (or a refused one) to the model's history."""
    entry = HistoryEntry(time=now_utc(), user=current_user(), action=action, alias="champion",
                         from_version=previous, to_version=target, reason=reason, gate=gate,
                         forced=forced)
    tracking.append_alias_history(name, entry.to_dict())
