"""Exit codes of the ``wxops`` commands, the same everywhere, for schedulers to act on.

A CI job, an Airflow task or a git hook tells "the gate said no" apart from "something
broke" by the code alone: ``wxops run``, ``wxops promote`` and ``wxops sync`` exit
:data:`EXIT_GATE_REJECTED` when the release gate (or a technical test) rejects the new
version, which then stays ``challenger``. ``wxops monitor`` has its own codes (3 stale
data, 4 drift, 5 live-score incident; see :mod:`wxops.monitor.alerts`).
"""

from __future__ import annotations

#: Everything done; a new version was promoted (or none was up for a decision).
EXIT_OK = 0
#: An error: bad input, a store that refused, a missing file. The message says which.
EXIT_ERROR = 1
#: Wrong command-line usage (Click's own code for unknown options and the like).
EXIT_USAGE = 2
#: The release gate or the technical tests rejected the version: it stays challenger.
EXIT_GATE_REJECTED = 6
