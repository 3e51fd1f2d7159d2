"""Helpers shared by the benchmark scripts: wall-clock timing of commands and callables."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def time_command(cmd: list[str], *, cwd: Path | None = None, repeat: int = 1) -> float:
    """Median wall seconds of a command (it must succeed)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_call(fn: Callable[[], object], *, repeat: int = 1) -> float:
    """Median wall seconds of a call."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wxops_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "wxops.cli", *args]
