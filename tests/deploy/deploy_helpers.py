"""Helpers of the deployment tests: real git with a fixed identity, the tiny project."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: A project with one fast model, so a push trains in seconds.
TINY_CONFIG = """\
seed: 7
models:
  - {name: ridge, type: linear, alpha: 1.0}
"""
PASSING_TEST = "def test_config_is_there():\n    assert True\n"
FAILING_TEST = "def test_broken():\n    assert 1 == 2, 'deliberately broken'\n"


def git_env() -> dict[str, str]:
    """This environment without GIT_* variables, plus a fixed author for commits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.org",
        "GIT_CONFIG_NOSYSTEM": "1",
    })
    return env


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run real git; output captured (a push's `remote:` lines are on stderr)."""
    return subprocess.run(["git", *args], cwd=cwd, env=git_env(), capture_output=True,
                          text=True, check=check, timeout=300)


def commit_all(clone: Path, message: str) -> str:
    """Commit everything in ``clone``; return the commit's sha."""
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", message, cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone).stdout.strip()
