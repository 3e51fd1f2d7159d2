"""Cold run of the reference pipeline vs a rerun with nothing changed (target: <= 5 %).

Both are whole `wxops run` processes in the same fresh project folder, so interpreter
start-up counts on both sides. Also reports the cold run's wall time (aim: < 90 s).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import time_command, wxops_cmd


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        cold = time_command(wxops_cmd("run", "-q"), cwd=project)
        cached = time_command(wxops_cmd("run", "-q"), cwd=project, repeat=5)
    ratio = cached / cold
    print(f"cold run of the reference pipeline: {cold:.1f} s (aim < 90 s)")
    print(f"cached rerun (median of 5):         {cached:.2f} s")
    print(f"ratio cached/cold: {ratio:.3f}  (target <= 0.05) -> {'PASS' if ratio <= 0.05 else 'FAIL'}")


if __name__ == "__main__":
    main()
