"""Installing the git hook: bare repositories only, earlier hooks kept and chained."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import git
from wxops.deploy import HookSettings, install_hook, uninstall_hook
from wxops.deploy.hook import CHAINED_NAME, MARKER, SETTINGS_NAME
from wxops.errors import HookInstallError


def test_refuses_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(HookInstallError, match=r"no such folder.*git init --bare"):
        install_hook(HookSettings(git_dir=str(tmp_path / "nope.git")))


def test_refuses_a_plain_folder(tmp_path: Path) -> None:
    with pytest.raises(HookInstallError, match="not a git repository"):
        install_hook(HookSettings(git_dir=str(tmp_path)))


def test_refuses_a_work_tree(repos: tuple[Path, Path]) -> None:
    _, clone = repos
    with pytest.raises(HookInstallError, match="a work tree, not a bare repository"):
        install_hook(HookSettings(git_dir=str(clone)))
    assert not (clone / ".git" / "hooks" / "post-receive").exists()


def test_cli_reports_a_bad_path_in_one_line(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = invoke("hook", "install", str(tmp_path))
    assert result.exit_code == 1
    assert "not a git repository" in result.output


def test_install_writes_an_executable_hook_and_settings(repos: tuple[Path, Path],
                                                         src_dir: Path,
                                                         hook_python: str) -> None:
    bare, _ = repos
    notes = install_hook(HookSettings(git_dir=str(bare), python=hook_python,
                                      env={"PYTHONPATH": str(src_dir)}))
    hook = bare / "hooks" / "post-receive"
    assert hook.stat().st_mode & stat.S_IXUSR
    text = hook.read_text()
    assert MARKER in text and f"{hook_python} -m wxops.deploy.receive" in text
    assert f"PYTHONPATH={src_dir}" in text
    saved = json.loads((bare / "hooks" / SETTINGS_NAME).read_text())
    assert saved["branch"] == "main" and saved["git_dir"] == str(bare.resolve())
    assert Path(saved["log_dir"]).is_dir()
    assert any("installed" in n for n in notes)


def test_existing_hook_is_chained_and_reinstall_is_idempotent(repos: tuple[Path, Path]) -> None:
    bare, _ = repos
    hook = bare / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\necho mail the team\n")
    hook.chmod(0o755)
    notes = install_hook(HookSettings(git_dir=str(bare)))
    chained = bare / "hooks" / CHAINED_NAME
    assert chained.read_text() == "#!/bin/sh\necho mail the team\n"
    assert any("kept the existing hook" in n for n in notes)
    # A second install replaces only wxops' own hook; the chained one stays as it was.
    install_hook(HookSettings(git_dir=str(bare), branch="production"))
    assert chained.read_text() == "#!/bin/sh\necho mail the team\n"
    assert json.loads((bare / "hooks" / SETTINGS_NAME).read_text())["branch"] == "production"
    assert uninstall_hook(bare) == [
        "removed the wxops hook; restored the earlier post-receive hook"]
    assert hook.read_text() == "#!/bin/sh\necho mail the team\n"
    assert not chained.exists()


def test_refuses_to_drop_one_of_two_foreign_hooks(repos: tuple[Path, Path]) -> None:
    bare, _ = repos
    (bare / "hooks" / "post-receive").write_text("#!/bin/sh\n")
    (bare / "hooks" / CHAINED_NAME).write_text("#!/bin/sh\n")
    with pytest.raises(HookInstallError, match="both exist; merge them"):
        install_hook(HookSettings(git_dir=str(bare)))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes everywhere")
def test_unwritable_log_folder_is_refused_at_install(repos: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    bare, _ = repos
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(HookInstallError, match=r"not writable|Permission denied"):
        install_hook(HookSettings(git_dir=str(bare), log_dir=str(locked / "logs")))


def test_log_folder_under_a_file_is_refused_at_install(repos: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    bare, _ = repos
    (tmp_path / "afile").write_text("")
    with pytest.raises(HookInstallError, match="cannot install the hook"):
        install_hook(HookSettings(git_dir=str(bare), log_dir=str(tmp_path / "afile" / "logs")))
    assert not (bare / "hooks" / "post-receive").exists()


def test_cli_install_parses_env_and_test_command(invoke, repos: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    bare, _ = repos
    result = invoke("hook", "install", str(bare), "--env", "MLFLOW_TRACKING_URI=http://x:5000",
                    "--test-command", "{python} -m pytest -x tests", "--branch", "trunk")
    assert result.exit_code == 0, result.output
    saved = HookSettings.load(bare / "hooks" / SETTINGS_NAME)
    assert saved.env == {"MLFLOW_TRACKING_URI": "http://x:5000"}
    assert saved.test_command == ["{python}", "-m", "pytest", "-x", "tests"]
    assert saved.branch == "trunk"
    bad = invoke("hook", "install", str(bare), "--env", "NOEQUALS")
    assert bad.exit_code == 1 and "KEY=VALUE" in bad.output
    # the repository itself is untouched and still valid
    assert git("rev-parse", "--is-bare-repository", cwd=bare).stdout.strip() == "true"


def test_refuses_an_interpreter_that_cannot_run(repos: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    bare, _ = repos
    with pytest.raises(HookInstallError, match="cannot run it"):
        install_hook(HookSettings(git_dir=str(bare), python=str(tmp_path / "no-python")))
    assert not (bare / "hooks" / "post-receive").exists()


def test_refuses_an_interpreter_without_wxops(repos: tuple[Path, Path]) -> None:
    bare, _ = repos
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if system_python is None or subprocess.run([system_python, "-c", "import wxops"],
                                               capture_output=True).returncode == 0:
        pytest.skip("no system python3 without wxops to install the hook with")
    with pytest.raises(HookInstallError, match=r"cannot import wxops \(ModuleNotFoundError"):
        install_hook(HookSettings(git_dir=str(bare), python=system_python))
    assert not (bare / "hooks" / "post-receive").exists()
