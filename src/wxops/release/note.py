"""Release notes / model cards, the change class and the semantic version of a champion.

A change is **breaking** when what a client sends or receives changes: an input column
added, removed, renamed or retyped, or the output changed (a unit change renames the
wxops variable, so it shows as a rename). Everything else (new data, new
hyperparameters, another estimator) is **incremental**. Breaking bumps the major
version, incremental the minor one; the first champion is ``1.0.0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wxops.errors import ReleaseError


@dataclass(frozen=True)
class ChangeClass:
    kind: str
    """``initial``, ``breaking`` or ``incremental``."""
    reasons: list[str] = field(default_factory=list)


def classify_change(new: dict[str, Any], old: dict[str, Any] | None, *,
                    new_target: str | None = None,
                    old_target: str | None = None) -> ChangeClass:
    """Compare two model signatures (``{"inputs": [...], "outputs": [...]}``) and targets.

    Breaking: inputs added, removed, retyped or reordered, the output schema changed, or
    another target variable (a unit change renames the wxops variable).
    """
    if old is None:
        return ChangeClass("initial", ["first champion"])
    reasons = []
    if new_target and old_target and new_target != old_target:
        reasons.append(f"target changed: {old_target} -> {new_target}")
    new_in = {c.get("name"): c.get("type") for c in new.get("inputs", [])}
    old_in = {c.get("name"): c.get("type") for c in old.get("inputs", [])}
    added = sorted(set(new_in) - set(old_in), key=str)
    removed = sorted(set(old_in) - set(new_in), key=str)
    if added:
        reasons.append(f"inputs added: {added}")
    if removed:
        reasons.append(f"inputs removed: {removed}")
    retyped = sorted((k for k in set(new_in) & set(old_in) if new_in[k] != old_in[k]), key=str)
    if retyped:
        reasons.append(f"input types changed: {retyped}")
    new_order = [c.get("name") for c in new.get("inputs", [])]
    old_order = [c.get("name") for c in old.get("inputs", [])]
    if not added and not removed and new_order != old_order:
        reasons.append("input order changed")
    if new.get("outputs") != old.get("outputs"):
        reasons.append("output schema changed")
    return ChangeClass("breaking" if reasons else "incremental", reasons)


def bump_version(previous: str | None, change: ChangeClass) -> str:
    """Next semantic version after ``previous`` for a change of class ``change``."""
    if previous is None or change.kind == "initial":
        return "1.0.0"
    try:
        major, minor, _patch = (int(p) for p in previous.split("."))
    except ValueError as exc:
        raise ReleaseError(
            f"previous champion's version tag {previous!r} is not MAJOR.MINOR.PATCH"
        ) from exc
    if change.kind == "breaking":
        return f"{major + 1}.0.0"
    return f"{major}.{minor + 1}.0"


def diff_signature(old: dict[str, Any] | None,
                   new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(input, previous type, new type) for each input added, removed or retyped, then the
    output when it changed; ``–`` where a side lacks it."""
    if old is None:
        return []
    before = {str(c.get("name")): str(c.get("type")) for c in old.get("inputs", [])}
    after = {str(c.get("name")): str(c.get("type")) for c in new.get("inputs", [])}
    rows = [(k, before.get(k, "–"), after.get(k, "–"))
            for k in [*before, *[k for k in after if k not in before]]
            if before.get(k) != after.get(k)]
    if list(before) != list(after) and not rows:
        rows.append(("(order)", ", ".join(before), ", ".join(after)))
    if old.get("outputs") != new.get("outputs"):
        rows.append(("(output)", str(old.get("outputs")), str(new.get("outputs"))))
    return rows


def diff_params(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str, str]]:
    """(key, old value, new value) for every parameter that differs."""
    keys = sorted(set(old) | set(new))
    return [(k, old.get(k, "–"), new.get(k, "–")) for k in keys if old.get(k) != new.get(k)]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "–" if v != v else (f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}")
        return str(v if v is not None else "–").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _better(column: str) -> str:
    """Which way a score is better, from the score table ("" for counts such as ``n``)."""
    from wxops.verify.score_table import lookup

    score = lookup(column)
    if score is None:
        return ""
    return {"higher": "higher", "lower": "lower"}.get(score.direction, f"closer to {score.perfect:g}")


def release_note(
    *,
    model: str,
    version: str,
    semver: str,
    change: ChangeClass,
    previous: dict[str, Any] | None,
    reason: str,
    user: str,
    time: str,
    forced: bool,
    gate_summary: str,
    params_diff: list[tuple[str, str, str]],
    data_diff: list[tuple[str, str, str]],
    scores: dict[str, dict[str, float]],
    signature_diff: list[tuple[str, str, str]] | None = None,
    score_heading: str | None = None,
) -> str:
    """The markdown model card stored as the version's description and as an artifact.

    Args:
        scores: score name -> {"candidate": x, "champion": y, "climatology": z, ...}.
    """
    prev = f"version {previous['version']} ({previous.get('semver') or 'untagged'})" \
        if previous else "none"
    parts = [
        f"# {model} {semver} (registry version {version})",
        "",
        f"- **Change class:** {change.kind}" + (f" — {'; '.join(change.reasons)}"
                                                  if change.reasons else ""),
        f"- **Replaces:** {prev}",
        f"- **Promoted by:** {user} at {time}" + (" — **FORCED past the gate**" if forced else ""),
        f"- **Reason:** {reason}",
        f"- **Gate:** {gate_summary}",
        "",
        f"## {score_heading or 'Scores on the test block (forecast-cycling replay)'}",
        "",
    ]
    sources = sorted({s for row in scores.values() for s in row},
                     key=lambda s: ["candidate", "champion"].index(s)
                     if s in ("candidate", "champion") else 2)
    parts.append(_md_table(["score", "better", *sources],
                           [[name, _better(name), *[row.get(s) for s in sources]]
                            for name, row in scores.items()]))
    if change.kind == "breaking":
        parts += ["", "## Signature changes (clients must change their requests)", ""]
        parts.append(_md_table(["input", "previous", "new"], signature_diff or [])
                     if signature_diff else "; ".join(change.reasons))
    parts += ["", "## Configuration changes against the previous champion", ""]
    parts.append(_md_table(["parameter", "previous", "new"], params_diff) if params_diff
                 else "No configuration change." if previous else "First champion.")
    parts += ["", "## Data changes against the previous champion", ""]
    parts.append(_md_table(["digest", "previous", "new"], data_diff) if data_diff
                 else "Same data digests." if previous else "First champion.")
    return "\n".join(parts) + "\n"
