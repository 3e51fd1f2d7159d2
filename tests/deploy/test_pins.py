"""Pinned requirements and wxops' own quality-gate files."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import yaml

from wxops.deploy.pins import pin_requirements, pyproject_requirements

REPO = Path(__file__).resolve().parents[2]


def test_pins_follow_requirements_transitively() -> None:
    pins = pin_requirements(["mlflow", "surely-not-a-package-wxops>=1"])
    assert pins.pinned["mlflow"] == md.version("mlflow")
    assert pins.pinned["mlflow-skinny"] == md.version("mlflow-skinny")  # a dependency of it
    assert "torch" not in pins.pinned and "pip" not in pins.pinned
    assert pins.missing == ["surely-not-a-package-wxops>=1"]
    text = pins.render("header line")
    assert text.startswith("# header line\n")
    assert f"mlflow=={md.version('mlflow')}\n" in text
    assert text.rstrip().endswith("surely-not-a-package-wxops>=1")


def test_pyproject_requirements_with_extras(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["pyyaml>=6"]\n'
                         '[project.optional-dependencies]\ntest = ["pytest>=8"]\n')
    assert pyproject_requirements(pyproject) == ["pyyaml>=6"]
    assert pyproject_requirements(pyproject, ["test"]) == ["pyyaml>=6", "pytest>=8"]


def test_cli_lock_from_pyproject(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "constraints.txt"
    result = invoke("deploy", "lock", "--pyproject", str(REPO / "pyproject.toml"),
                    "--extra", "test", "-o", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert f"pyyaml=={md.version('pyyaml')}" in lines
    assert f"pytest=={md.version('pytest')}" in lines


def test_repository_quality_gate_files() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    assert {"ruff", "mypy"} <= {h["id"] for h in hooks}
    ci = (REPO / ".ci" / "run").read_text()
    assert "ruff check" in ci and "mypy src" in ci and ".ci/audit.py" in ci


def test_constraints_file_pins_every_requirement_within_its_range() -> None:
    """wxops' own constraints.txt stays in step with pyproject.toml (regenerate: docs/deploy.md)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    for text in pyproject_requirements(REPO / "pyproject.toml", ["test"]):
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        if name == "torch":  # pinned in pyproject itself; its wheel depends on the platform
            continue
        if name == "wxops":  # an extra of wxops itself (``wxops[remote]`` in ``test``)
            continue
        assert name in pins, f"constraints.txt does not pin {req.name}: regenerate it"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside {req.specifier}: regenerate it")
