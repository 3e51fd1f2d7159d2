"""Which wxops.yaml a command uses: ``-c FILE``, else ``./wxops.yaml``, else the example.

Like pytest, dbt or docker compose, a command run in a project folder picks up that
folder's config; each command says in one line (on stderr) which one it uses.
"""

from __future__ import annotations

from pathlib import Path

#: The file a project folder's commands pick up without ``-c``.
CONFIG_NAME = "wxops.yaml"


def find_config(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """``explicit`` if given, else ``cwd/wxops.yaml`` when it exists, else None (the example)."""
    if explicit is not None:
        return explicit
    candidate = (cwd or Path.cwd()) / CONFIG_NAME
    return candidate if candidate.is_file() else None


def describe_config(path: Path | None, *, explicit: bool) -> str:
    """The one line a command prints about its config."""
    if path is None:
        return f"config: the built-in visibility example (no ./{CONFIG_NAME}; -c FILE picks one)"
    how = "" if explicit else " (found in the current folder; -c FILE picks another)"
    return f"config: {path}{how}"


def use_config(explicit: Path | None) -> Path | None:
    """:func:`find_config`, with its one line on stderr (a CLI command's first output)."""
    import sys

    found = find_config(explicit)
    sys.stderr.write(describe_config(found, explicit=explicit is not None) + "\n")
    sys.stderr.flush()
    return found
