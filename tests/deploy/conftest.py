"""Fixtures for the deployment tests: real git repositories and the CLI as users call it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import wxops
from tests.deploy.deploy_helpers import PASSING_TEST, TINY_CONFIG, commit_all, git
from wxops.deploy.cli import register


@pytest.fixture(scope="session")
def cli() -> typer.Typer:
    """The wxops CLI with the deploy commands (registered here until cli.py wires them)."""
    from wxops.cli import app as main_app

    names = {g.name for g in main_app.registered_groups}
    if {"hook", "deploy"} <= names:
        return main_app
    app = typer.Typer(no_args_is_help=True)
    register(app)

    @app.callback()
    def _root() -> None:
        """wxops (test harness)."""

    return app


@pytest.fixture
def invoke(cli: typer.Typer):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def _invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return _invoke


@pytest.fixture(scope="session")
def src_dir() -> Path:
    """The source folder of the wxops under test (the hook's PYTHONPATH)."""
    return Path(wxops.__file__).resolve().parent.parent


@pytest.fixture
def repos(tmp_path: Path) -> tuple[Path, Path]:
    """A bare repository (branch main) and a clone holding the tiny project, not pushed."""
    bare = tmp_path / "visibility.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    clone = tmp_path / "clone"
    git("clone", "-q", str(bare), str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "main", cwd=clone, check=False)
    (clone / "wxops.yaml").write_text(TINY_CONFIG)
    (clone / "tests").mkdir()
    (clone / "tests" / "test_project.py").write_text(PASSING_TEST)
    commit_all(clone, "tiny visibility project")
    return bare, clone


@pytest.fixture
def hook_python() -> str:
    """The interpreter the installed hook uses: this one, with the source under test."""
    return sys.executable
