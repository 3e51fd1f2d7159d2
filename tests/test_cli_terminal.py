"""The installed ``wxops`` command as a person meets it outside a terminal (piped to a file).

One project folder made by ``wxops init``: commands there pick up its ``wxops.yaml``
without ``-c`` and say so; messages come in the order things happen; tables keep whole
values; help shows no ``<bool>``; a busy port 8787 gives no Dask warning.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_obs

WXOPS = str(Path(sys.executable).with_name("wxops"))


def _wxops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """stdout and stderr into one pipe, as `wxops ... > log 2>&1` writes them."""
    return subprocess.run([WXOPS, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """`wxops init proj`, edited to a small table and one named model, run with `wxops run`
    in the folder while another program holds port 8787 (Dask's default)."""
    root = tmp_path_factory.mktemp("cli")
    made = _wxops("init", "proj", cwd=root)
    assert made.returncode == 0, made.stdout
    folder = root / "proj"
    make_obs(60).to_csv(folder / "obs.csv", index=False)
    raw = yaml.safe_load((folder / "wxops.yaml").read_text())
    raw["data"] = {"source": "table", "path": "obs.csv"}
    raw["models"] = [{"name": "my-gbm", "type": "gradient_boosting", "max_iter": 10}]
    raw["execution"] = {"executor": "dask", "workers": 1}
    (folder / "wxops.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            busy.bind(("0.0.0.0", 8787))
            busy.listen()
        except OSError:
            pass  # already held by something else: the case under test all the same
        done = _wxops("run", cwd=folder)
    assert done.returncode in (0, 6), done.stdout[-3000:]  # 6: the gate kept a challenger
    yield folder, done.stdout


def test_run_uses_the_folders_config_and_says_so(project: tuple[Path, str]) -> None:
    folder, out = project
    first = out.splitlines()[0]
    assert first.startswith(f"config: {folder / 'wxops.yaml'}"), first
    assert "best: my-gbm" in out  # the folder's model, not the built-in example's


def test_messages_in_order_without_a_terminal(project: tuple[Path, str]) -> None:
    _, out = project
    lines = out.splitlines()
    stage = next(i for i, line in enumerate(lines) if line.startswith("split ("))
    register = next(i for i, line in enumerate(lines) if line.startswith("register ("))
    verdict = next(i for i, line in enumerate(lines) if re.match(r"version 1 (is champion|stays)", line))
    best = next(i for i, line in enumerate(lines) if line.startswith("best: "))
    assert stage < verdict < register < best, out


def test_no_dask_port_warning(project: tuple[Path, str]) -> None:
    _, out = project
    assert "8787" not in out and "already in use" not in out, out


def test_history_piped_keeps_whole_times(project: tuple[Path, str]) -> None:
    folder, _ = project
    done = _wxops("history", cwd=folder)
    assert done.returncode == 0, done.stdout
    assert "…" not in done.stdout
    rows = [line.split("\t") for line in done.stdout.splitlines() if "\t" in line]
    assert rows[0][:2] == ["#", "time (UTC)"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?", rows[1][1]), rows[1]


def test_help_has_no_type_noise(project: tuple[Path, str]) -> None:
    folder, _ = project
    done = _wxops("run", "--help", cwd=folder)
    assert done.returncode == 0
    assert "--no-cache" in done.stdout and "<bool>" not in done.stdout


def test_without_a_config_in_the_folder_the_example_is_named(tmp_path: Path) -> None:
    done = _wxops("config", "validate", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[0].startswith("config: the built-in visibility example")
