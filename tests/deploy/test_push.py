"""Pushing through the real hook: a real bare repository, real git, the real pipeline."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import FAILING_TEST, commit_all, git, git_env
from wxops.deploy import HookSettings, install_hook


def registry_state(store: Path, model: str = "visibility") -> tuple[list[str], str | None]:
    """Versions of ``model`` and the one holding ``champion``, read with MLflow's client."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}",
                                 registry_uri=f"sqlite:///{store}")
    versions = sorted(v.version for v in client.search_model_versions(f"name='{model}'"))
    try:
        champion = str(client.get_model_version_by_alias(model, "champion").version)
    except MlflowException:
        champion = None
    return [str(v) for v in versions], champion


def push(clone: Path) -> str:
    """``git push`` to main; returns what the pusher sees (the hook's `remote:` lines)."""
    done = git("push", "origin", "main", cwd=clone)
    return done.stderr


@pytest.mark.slow
def test_push_trains_and_a_broken_push_changes_nothing(
    repos: tuple[Path, Path], hook_python: str, src_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hook inherits the pusher's environment here (same machine); the default store
    # beside the hook's work tree is what this test reads.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    bare, clone = repos
    # A hook the team already had: it must keep running, before wxops.
    earlier = bare / "hooks" / "post-receive"
    earlier.write_text(f"#!/bin/sh\ncat > {bare.parent / 'earlier-hook-saw.txt'}\n")
    earlier.chmod(0o755)
    install_hook(HookSettings(git_dir=str(bare), python=hook_python,
                              env={"PYTHONPATH": str(src_dir)}))
    settings = HookSettings.load(bare / "hooks" / "wxops-hook.json")
    store = settings.work_dir / "mlflow.db"

    # 1. A good push: tests pass, the pipeline runs, version 1 becomes champion.
    good_sha = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    out = push(clone)
    assert "remote: wxops: [test] ok" in out, out
    assert "remote: wxops: [train] ok" in out, out
    assert "remote: wxops: model visibility version 1 is champion" in out, out
    assert registry_state(store) == (["1"], "1")
    assert good_sha in (bare.parent / "earlier-hook-saw.txt").read_text()

    # 2. A broken test with a changed model: the chain stops before training.
    (clone / "wxops.yaml").write_text((clone / "wxops.yaml").read_text().replace(
        "alpha: 1.0", "alpha: 5.0"))
    (clone / "tests" / "test_broken.py").write_text(FAILING_TEST)
    commit_all(clone, "a change with a broken test")
    out = push(clone)
    assert "remote: wxops: [test] failed with exit status 1" in out, out
    assert "deliberately broken" in out
    assert "no training after a failed step; the champion is unchanged" in out
    assert "[train]" not in out
    assert registry_state(store) == (["1"], "1")

    # 3. An invalid config: stopped at validation, before the tests even run.
    (clone / "tests" / "test_broken.py").unlink()
    (clone / "wxops.yaml").write_text("models:\n  - {name: ridge, type: linear, alpah: 2}\n")
    commit_all(clone, "a typo in the config")
    out = push(clone)
    assert "models.0.linear.alpah: unknown key" in out, out
    assert "remote: wxops: [validate] failed" in out
    assert "[test]" not in out and "[train]" not in out
    assert registry_state(store) == (["1"], "1")

    # One log file per push, each holding what the pusher saw.
    logs = sorted(Path(settings.log_dir).glob("*.log"))
    assert len(logs) == 3
    assert "[test] failed" in logs[1].read_text()
    # The work tree is clean (the deleted broken test is gone) but the store is kept.
    assert not (settings.work_dir / "tests" / "test_broken.py").exists()
    assert store.exists()


def test_unwritable_log_folder_runs_nothing(repos: tuple[Path, Path], hook_python: str,
                                            src_dir: Path) -> None:
    bare, clone = repos
    log_dir = bare.parent / "push-logs"
    install_hook(HookSettings(git_dir=str(bare), python=hook_python, log_dir=str(log_dir),
                              env={"PYTHONPATH": str(src_dir)}))
    log_dir.rmdir()
    log_dir.write_text("a file where the log folder should be\n")
    out = push(clone)
    assert f"remote: wxops: cannot write the push log in {log_dir}" in out, out
    assert "nothing was run for this push; the champion is unchanged" in out
    assert not (bare / "wxops" / "project").exists()  # no checkout, no training


def test_pushes_to_other_branches_are_ignored(repos: tuple[Path, Path], hook_python: str,
                                              src_dir: Path) -> None:
    bare, clone = repos
    install_hook(HookSettings(git_dir=str(bare), python=hook_python,
                              env={"PYTHONPATH": str(src_dir)}))
    done = git("push", "origin", "main:feature", cwd=clone)
    assert "remote: wxops: refs/heads/feature: only pushes to main are tested" in done.stderr
    assert not list((bare / "wxops" / "logs").glob("*.log"))


_STAMP = re.compile(r"lock (acquired|released) at (\S+)")


def test_concurrent_pushes_queue(repos: tuple[Path, Path], hook_python: str,
                                 src_dir: Path) -> None:
    """Two pushes arriving together run one after the other, never overlapping."""
    bare, clone = repos
    git("push", "-q", "origin", "main", cwd=clone)  # before the hook: nothing runs
    sha = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    # A slow test step that fails, so each chain holds the lock ~1.5 s and never trains.
    install_hook(HookSettings(
        git_dir=str(bare), python=hook_python, env={"PYTHONPATH": str(src_dir)},
        test_command=["{python}", "-c", "import sys, time; time.sleep(1.5); sys.exit(1)"],
    ))
    hook = bare / "hooks" / "post-receive"
    outputs: list[str] = []

    def run_hook() -> None:
        # Exactly how git calls it: in the bare repository, GIT_DIR set, refs on stdin.
        env = {**git_env(), "GIT_DIR": "."}
        done = subprocess.run([str(hook)], input=f"{'0' * 40} {sha} refs/heads/main\n",
                              cwd=bare, env=env, capture_output=True, text=True, timeout=120)
        outputs.append(done.stdout + done.stderr)

    threads = [threading.Thread(target=run_hook) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outputs) == 2
    assert sum("queued behind it" in out for out in outputs) >= 1, outputs
    spans = []
    for log in (bare / "wxops" / "logs").glob("*.log"):
        stamps = dict(_STAMP.findall(log.read_text()))
        spans.append((dt.datetime.fromisoformat(stamps["acquired"]),
                      dt.datetime.fromisoformat(stamps["released"])))
    assert len(spans) == 2
    first, second = sorted(spans)
    assert first[1] <= second[0], f"chains overlapped: {spans}"
    for out in outputs:
        assert "[test] failed" in out and "[train]" not in out
    assert os.path.exists(bare / "wxops" / "push.lock")
