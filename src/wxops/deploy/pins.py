"""Pinned requirements from the environment that runs wxops now.

Images and CI jobs must install exactly what was tested, so ``wxops deploy init`` and
``wxops deploy lock`` read the versions installed here (``importlib.metadata``) and follow
each requirement transitively. No resolver and no network: what is pinned is what this
environment proved to work together.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

#: Installed apart from the lock: the images pick torch's CPU or CUDA build by a build arg,
#: and the CUDA runtime packages come with it; pip/setuptools/wheel belong to the image.
EXCLUDED: tuple[str, ...] = ("torch", "triton", "pip", "setuptools", "wheel", "wxops")
_EXCLUDED_PREFIXES: tuple[str, ...] = ("nvidia-",)

#: What the team stack needs besides wxops' own dependencies: the inference service's web
#: stack and metrics, and the PostgreSQL driver of the tracking server.
STACK_EXTRAS: tuple[str, ...] = (
    "fastapi", "uvicorn", "prometheus-client", "psycopg[binary]",
)


@dataclass
class Pins:
    """The result of :func:`pin_requirements`."""

    pinned: dict[str, str] = field(default_factory=dict)
    """Canonical distribution name -> installed version."""
    missing: list[str] = field(default_factory=list)
    """Requirements not installed here: listed unpinned, so the user sees the gap."""

    def render(self, header: str) -> str:
        """The requirements file: a comment header, ``name==version`` lines, then gaps."""
        lines = [f"# {line}" if line else "#" for line in header.splitlines()]
        lines += [f"{name}=={version}" for name, version in sorted(self.pinned.items())]
        if self.missing:
            lines.append("# not installed where this file was written, so left unpinned:")
            lines += sorted(self.missing)
        return "\n".join(lines) + "\n"


def _excluded(name: str) -> bool:
    return name in EXCLUDED or name.startswith(_EXCLUDED_PREFIXES)


def wxops_requirements(extras: Iterable[str] = ()) -> list[str]:
    """wxops' declared requirements (with the named extras) from its installed metadata."""
    try:
        declared = metadata.requires("wxops") or []
    except metadata.PackageNotFoundError:
        return []
    wanted = {"", *extras}
    keep = []
    for text in declared:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in wanted):
            extras_part = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            keep.append(f"{req.name}{extras_part}")
    return keep


def pyproject_requirements(path: Path, extras: Iterable[str] = ()) -> list[str]:
    """Requirements declared in a ``pyproject.toml`` (with the named optional extras).

    Used for wxops' own ``constraints.txt``: the source tree's declarations can be newer
    than the metadata of an installed wxops.
    """
    project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    name = str(project.get("name", "")).lower()
    todo, done = list(extras), set()
    while todo:
        extra = todo.pop(0)
        if extra in done:
            continue
        done.add(extra)
        for req in optional.get(extra, []):
            # "wxops[remote,slurm]" inside an extra: the project's own extras, expanded
            own = re.match(rf"^{re.escape(name)}\[([^\]]+)\]$", req.replace(" ", "").lower()) if name else None
            if own:
                todo += [e.strip() for e in own.group(1).split(",")]
            else:
                reqs.append(req)
    return reqs


def pin_requirements(roots: Iterable[str]) -> Pins:
    """Pin ``roots`` and everything they need to the versions installed here.

    Args:
        roots: requirement strings, e.g. ``"mlflow"`` or ``"psycopg[binary]"``; version
            specifiers are ignored because the installed version is what gets pinned.

    Returns:
        The pins, with torch and its CUDA runtime left out (see :data:`EXCLUDED`).
    """
    pins = Pins()
    seen: set[tuple[str, frozenset[str]]] = set()
    queue = [Requirement(r) for r in roots]
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen or _excluded(name):
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            pins.missing.append(str(req))
            continue
        pins.pinned[name] = dist.version
        for text in dist.requires or []:
            try:
                child = Requirement(text)
            except InvalidRequirement:
                continue
            if child.marker is not None and not any(
                child.marker.evaluate({"extra": extra}) for extra in {"", *req.extras}
            ):
                continue
            queue.append(child)
    return pins


def tool_pin(name: str) -> str:
    """``name==version`` when ``name`` is installed here, else just ``name``."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name
