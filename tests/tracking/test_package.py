"""The tracking package's shape: its public names, its MLflow monopoly, its cache key."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import wxops
from wxops import tracking
from wxops.cache import code_version

SRC = Path(wxops.__file__).parent
#: Modules outside tracking/ that may import MLflow, and why: `wxops sync` copies outbox
#: runs and registry entries between two stores; the team server administers users; the
#: service tells a registry outage from "no such model" by MLflow's error code.
MLFLOW_ELSEWHERE = {"sync.py", "server/users.py", "serve/server.py"}


def test_every_public_name_is_importable_from_the_package() -> None:
    for name in tracking.__all__:
        assert getattr(tracking, name) is not None, name
    assert callable(tracking.start_run) and callable(tracking.register_model)


def test_no_module_outside_the_allowed_ones_imports_mlflow() -> None:
    imports = re.compile(r"^\s*(?:import mlflow|from mlflow[\w.]* import)", re.M)
    found = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if imports.search(p.read_text())}
    outside = {p for p in found if not p.startswith("tracking/")}
    assert outside <= MLFLOW_ELSEWHERE, (
        f"{sorted(outside - MLFLOW_ELSEWHERE)} import MLflow: go through wxops.tracking instead")


def test_importing_tracking_does_not_import_mlflow() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import sys, wxops.tracking; print('mlflow' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # `wxops --help` and cached reruns stay fast


def test_a_change_in_any_module_of_a_package_changes_its_code_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "wxops_probe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from wxops_probe_pkg.part import X\n")
    (pkg / "part.py").write_text("X = 1\n")
    (tmp_path / "wxops_probe_mod.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_version("wxops_probe_pkg")
    assert code_version("wxops_probe_pkg") == before
    (pkg / "part.py").write_text("X = 2\n")
    assert code_version("wxops_probe_pkg") != before
    single = code_version("wxops_probe_mod")
    (tmp_path / "wxops_probe_mod.py").write_text("Y = 2\n")
    assert code_version("wxops_probe_mod") != single
    with pytest.raises(ModuleNotFoundError):
        code_version("wxops_probe_missing")
