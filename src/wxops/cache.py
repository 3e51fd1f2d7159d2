"""Content-addressed cache of stage outputs.

A stage's key hashes its inputs' digests, its config section and the source code of the
modules it runs, so any change to one of the three reruns it and nothing else does.
Entries are written to a temporary file and renamed, so an interrupted run never leaves
a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any


def code_version(*modules: str) -> str:
    """sha256 of the source files of ``modules`` (read from disk, not imported); a
    package counts with every module in it."""
    sha = hashlib.sha256()
    for name in sorted(modules):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(name)
        origin = Path(spec.origin)
        sha.update(name.encode())
        if not spec.submodule_search_locations:
            sha.update(origin.read_bytes())
            continue
        for path in sorted(origin.parent.rglob("*.py")):
            sha.update(path.relative_to(origin.parent).as_posix().encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()


def make_key(*parts: str) -> str:
    """One key from several digests/hashes."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class StageCache:
    """Pickled stage outputs under ``root/<stage>/<key>.pkl``."""

    def __init__(self, root: Path, *, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.pkl"

    def get(self, stage: str, key: str) -> Any | None:
        """The cached value, or None when absent, disabled or unreadable."""
        if not self.enabled:
            return None
        path = self._path(stage, key)
        try:
            with path.open("rb") as handle:
                return pickle.load(handle)
        except FileNotFoundError:
            return None
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            # Written by an older wxops or damaged: treat as a miss and overwrite later.
            path.unlink(missing_ok=True)
            return None

    def put(self, stage: str, key: str, value: Any) -> None:
        path = self._path(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
