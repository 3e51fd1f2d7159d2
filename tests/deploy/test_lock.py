"""`wxops deploy lock`: hashes and platform markers (uv), accepted by pip's hash-checking mode."""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uv", reason="the lock extra is in the test extra: pip install -e '.[test]'")

WXOPS = str(Path(sys.executable).with_name("wxops"))
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+?)(?: ; (.+?))? \\$")


@pytest.fixture(scope="module")
def lock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lock") / "requirements.lock"
    done = subprocess.run([WXOPS, "deploy", "lock", "-o", str(out)], capture_output=True, text=True,
                          timeout=900, cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _entries(text: str) -> dict[str, tuple[str, str | None, list[str]]]:
    """name -> (version, marker, hashes) from uv's output."""
    found: dict[str, tuple[str, str | None, list[str]]] = {}
    name = ""
    for line in text.splitlines():
        pin = _PIN.match(line)
        if pin:
            name = pin.group(1).lower()
            found[name] = (pin.group(2), pin.group(3), [])
        elif line.strip().startswith("--hash=sha256:"):
            found[name][2].append(line.strip().split(":", 1)[1].rstrip(" \\"))
    return found


def test_every_pin_has_hashes_and_other_platforms_keep_their_markers(lock: Path) -> None:
    entries = _entries(lock.read_text())
    assert len(entries) > 50
    assert all(hashes for _, _, hashes in entries.values()), [n for n, e in entries.items() if not e[2]]
    # installed versions kept; the grib and server extras are in the image's lock
    for name in ("mlflow", "pandas", "cfgrib", "psycopg"):
        assert entries[name][0] == md.version(name), name
    assert "torch" not in entries and not any(n.startswith("nvidia-") for n in entries)
    # a Windows-only dependency, not installed on this Linux machine, is kept with its marker
    windows = {n for n, (_, marker, _) in entries.items() if marker and "sys_platform == 'win32'" in marker}
    assert windows, "no win32 marker: markers were evaluated on this machine"
    assert entries["uvloop"][1] == "sys_platform != 'win32'"
    # uv reads one wheel's metadata: what the installed copies need here is listed too
    # (eccodes declares eccodeslib only in its Linux and macOS wheels)
    from wxops.deploy.lock import unlisted_dependencies

    assert unlisted_dependencies(lock.read_text()) == []
    assert "eccodeslib" in entries


def _lines_of(text: str, names: set[str]) -> str:
    """The full entries (pin line and hash lines) of ``names`` from a lock."""
    keep, out = False, []
    for line in text.splitlines():
        pin = _PIN.match(line)
        if pin:
            keep = pin.group(1).lower() in names
        elif not line.startswith("    --hash"):
            keep = keep and line.startswith("    ")
            continue
        if keep:
            out.append(line)
    return "\n".join(out).rstrip(" \\") + "\n"


def _pip_hash_check(requirements: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                           "--no-deps", "--require-hashes", "-r", str(requirements)],
                          capture_output=True, text=True, timeout=600)


def test_pip_hash_checking_mode_accepts_the_lock_and_refuses_a_changed_hash(lock: Path, tmp_path: Path) -> None:
    """Three entries of the lock, checked by pip against the files the index serves."""
    part = _lines_of(lock.read_text(), {"pyyaml", "six", "packaging"})
    good = tmp_path / "good.lock"
    good.write_text(part)
    done = _pip_hash_check(good)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Would install" in done.stdout
    bad = tmp_path / "bad.lock"
    bad.write_text(re.sub(r"sha256:[0-9a-f]{8}", "sha256:00000000", part))
    refused = _pip_hash_check(bad)
    assert refused.returncode != 0 and "DO NOT MATCH THE HASHES" in refused.stderr.upper(), refused.stderr[-2000:]


def test_without_uv_the_error_names_the_extra(tmp_path: Path) -> None:
    code = ("import sys\nsys.modules['uv'] = None\nfrom wxops.cli import main\n"
            f"sys.argv = ['wxops', 'deploy', 'lock', '-o', {str(tmp_path / 'x.lock')!r}]\nmain()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout
    assert "pip install 'wxops[lock]'" in done.stderr
    assert not (tmp_path / "x.lock").exists()
