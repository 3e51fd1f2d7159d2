"""Content digests and provenance: "what data, code and config made this model?"."""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_CHUNK = 1 << 20


def digest_file(path: Path) -> str:
    """sha256 of a file's bytes (a folder, e.g. a Zarr store: of every file in it, sorted)."""
    sha = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            sha.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                sha.update(chunk)
    return sha.hexdigest()


def digest_frame(frame: pd.DataFrame) -> str:
    """sha256 of a DataFrame's values, index, column names and dtypes."""
    import pandas as pd

    sha = hashlib.sha256()
    sha.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    sha.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return sha.hexdigest()


def git_state(folder: Path) -> dict[str, Any]:
    """Commit and dirty flag of the git work tree holding ``folder`` (None outside git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def package_versions(names: tuple[str, ...] = (
    "wxops", "mlflow", "scikit-learn", "torch", "pandas", "numpy", "xarray", "scores", "pvlib",
)) -> dict[str, str | None]:
    """Installed versions of the packages that shape a model's results."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
