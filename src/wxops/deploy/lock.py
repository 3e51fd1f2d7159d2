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

import re
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
    roots = list(roots)
    body = _uv_compile(roots, constraints, timeout)
    for _ in range(3):
        # uv reads one file's metadata per version; a package whose wheels declare different
        # dependencies (eccodes: eccodeslib only in its Linux/macOS wheels) loses some, and
        # pip's hash-checking mode would then refuse the lock. What the installed copies
        # need here goes back in as roots, with their markers.
        unlisted = unlisted_dependencies(body)
        if not unlisted:
            break
        roots += unlisted
        body = _uv_compile(roots, constraints, timeout)
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    return "\n".join(lines) + "\n" + body


_PIN = re.compile(r"^([A-Za-z0-9._-]+)==", re.MULTILINE)


def unlisted_dependencies(lock_text: str) -> list[str]:
    """Requirements of the locked packages installed here that the lock does not list."""
    import importlib.metadata as metadata

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    listed = {canonicalize_name(name) for name in _PIN.findall(lock_text)}
    missing: dict[str, str] = {}
    for name in sorted(listed):
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            child = canonicalize_name(req.name)
            if child in listed or child in EXCLUDED or child in missing:
                continue
            if req.marker is not None and ("extra" in str(req.marker) or not req.marker.evaluate()):
                continue
            missing[child] = text
    return list(missing.values())


def _uv_compile(roots: list[str], constraints: Mapping[str, str], timeout: float) -> str:
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
        return out.read_text(encoding="utf-8")


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
