"""`wxops --help` start-up vs a bare interpreter and vs importing MLflow + PyTorch.

Target: well under a second, i.e. MLflow and torch are not imported for --help.
"""

from __future__ import annotations

import sys

from _common import time_command, wxops_cmd


def main() -> None:
    bare = time_command([sys.executable, "-c", "pass"], repeat=5)
    heavy = time_command([sys.executable, "-c", "import mlflow, torch"], repeat=3)
    help_ = time_command(wxops_cmd("--help"), repeat=5)
    print(f"python -c pass:             {bare:.3f} s")
    print(f"import mlflow, torch:       {heavy:.3f} s")
    print(f"wxops --help:               {help_:.3f} s  (target < 1 s) -> {'PASS' if help_ < 1 else 'FAIL'}")
    print(f"ratio help/heavy imports:   {help_ / heavy:.3f}")
    print(f"ratio help/bare python:     {help_ / bare:.2f}")


if __name__ == "__main__":
    main()
