"""What the monitor concludes: alerts, their severity, and the exit code a scheduler reads.

=====  ================================================================================
code   meaning (the highest that applies is returned)
=====  ================================================================================
0      healthy: scores near their promotion level, no drift, fresh data
1      error: unreadable or malformed input (file, column, no overlap); nothing judged
2      usage error (unknown option; Typer's own code)
3      stale or missing data: observations or inputs too old, too many invalid
       requests, or too few joined pairs to score the latest window
4      input drift on at least one feature for ``monitor.windows`` windows in a row
5      live-score incident: a score stayed beyond its limit for ``monitor.windows``
       windows; the configured corrective action ran (or was recommended)
=====  ================================================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_STALE = 3
EXIT_DRIFT = 4
EXIT_INCIDENT = 5

_CODES = {"stale": EXIT_STALE, "drift": EXIT_DRIFT, "live_score": EXIT_INCIDENT}


@dataclass(frozen=True)
class Alert:
    """One condition that holds now, with the evidence an operator needs to act on it."""

    kind: str
    """``live_score``, ``drift`` or ``stale``."""
    subject: str
    """The score, feature or data stream concerned (e.g. ``rmse``, ``t2m``)."""
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exit_code(alerts: list[Alert]) -> int:
    """The code a scheduler acts on: the most serious alert's (0 when there is none)."""
    return max((_CODES[a.kind] for a in alerts), default=EXIT_OK)
