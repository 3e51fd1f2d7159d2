"""``requirements.lock`` with hashes and platform markers, resolved by uv for every platform.

``uv pip compile --universal --generate-hashes`` pins each package with the sha256 of every
file the index holds for that version and keeps environment markers (a dependency needed
only on Windows or on Python < 3.12 stays in the file with its marker, instead of being
decided by the machine that writes the lock). The versions installed here go in as
constraints, so the lock still pins what this environment tested; a package that exists
only for other platforms is resolved by uv. ``pip install --require-hashes -r
requirements.lock`` then refuses any file whose hash differs. uv reads the package index
from ``UV_INDEX_URL`` / ``UV_EXTRA_INDEX_URL`` (default: PyPI).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from wxops.deploy.pins import EXCLUDED
from wxops.errors import DeployError, MissingExtraError


def uv_binary() -> str:
    """The uv executable of the ``lock`` extra."""
    try:
        from uv import find_uv_bin
    except ImportError as exc:
        raise MissingExtraError("lock", f"wxops deploy lock resolves with uv ({exc})") from exc
    return str(find_uv_bin())


def compile_lock(roots: Iterable[str], *, constraints: Mapping[str, str], header: str,
                 timeout: float = 900.0) -> str:
    """Resolve ``roots`` for every platform with hashes; return the lock file's text.

    Args:
        roots: requirement strings (``"mlflow>=3.1,<4"``, ``"uvloop; sys_platform != 'win32'"``).
        constraints: name -> version installed here; each becomes ``name==version``.
        header: comment lines put above uv's output.
        timeout: seconds uv may take (it downloads metadata from the index).

    Raises:
        MissingExtraError: uv is not installed (the ``lock`` extra).
        DeployError: uv cannot resolve (conflict, index unreachable); the message ends
            with uv's own last lines.
    """
    uv = uv_binary()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="wxops-lock-") as tmp:
        folder = Path(tmp)
        (folder / "requirements.in").write_text("\n".join(roots) + "\n", encoding="utf-8")
        (folder / "constraints.txt").write_text(
            "".join(f"{name}=={version}\n" for name, version in sorted(constraints.items())), encoding="utf-8")
        out = folder / "requirements.lock"
        command = [uv, "pip", "compile", str(folder / "requirements.in"),
                   "--constraint", str(folder / "constraints.txt"), "--generate-hashes", "--universal",
                   "--python-version", python, "--no-header", "--quiet", "--output-file", str(out),
                   *[arg for name in EXCLUDED for arg in ("--no-emit-package", name)]]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise DeployError(f"uv did not resolve the lock within {timeout:.0f} s; is the package "
                              "index reachable (UV_INDEX_URL)?") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
            raise DeployError(f"uv could not resolve the lock:\n{tail}")
        body = out.read_text(encoding="utf-8")
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    return "\n".join(lines) + "\n" + body


def declared_requirements(extras: Iterable[str] = ()) -> list[str]:
    """wxops' installed requirements with the named extras, specifiers and markers kept.

    The ``extra == "..."`` part of an extra's marker is dropped (the extra is chosen here);
    torch and the other :data:`~wxops.deploy.pins.EXCLUDED` names are left out.
    """
    import importlib.metadata as metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    try:
        declared = metadata.requires("wxops") or []
    except metadata.PackageNotFoundError as exc:
        raise DeployError("wxops is not installed here (pip install -e .): nothing to lock") from exc
    wanted = set(extras)
    roots: list[str] = []
    for text in declared:
        req = Requirement(text)
        if canonicalize_name(req.name) in EXCLUDED:
            continue
        marker = str(req.marker) if req.marker is not None else ""
        if "extra" in marker:
            if not any(req.marker is not None and req.marker.evaluate({"extra": e}) for e in wanted):
                continue
            req.marker = None  # setuptools writes an extra's marker as just `extra == "name"`
        roots.append(str(req))
    return roots
