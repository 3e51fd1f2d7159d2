"""Install the git trigger: a post-receive hook that tests and trains every push to main.

The hook is a short POSIX shell script, so git can run it without knowing about Python;
it runs any hook that was there before (kept as ``post-receive.wxops-chained``), then
hands the pushed refs to :mod:`wxops.deploy.receive` under the interpreter chosen at
install time. Settings live beside it in ``wxops-hook.json``, readable by an operator.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wxops.errors import HookInstallError

HOOK_NAME = "post-receive"
CHAINED_NAME = "post-receive.wxops-chained"
SETTINGS_NAME = "wxops-hook.json"
MARKER = "# wxops-hook: managed by `wxops hook install`"

_SCRIPT = """#!/bin/sh
{marker}
# Settings: wxops-hook.json beside this file. Change them by running `wxops hook install`
# again; `wxops hook uninstall` puts back the hook that was here before, if any.
# Any earlier post-receive hook is kept as {chained} and runs first.
hooks_dir=$(cd "$(dirname "$0")" && pwd)
input=$(cat)
if [ -x "$hooks_dir/{chained}" ]; then
    printf '%s\\n' "$input" | "$hooks_dir/{chained}" "$@"
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "wxops: the earlier post-receive hook exited with status $status; going on"
    fi
fi
printf '%s\\n' "$input" | env {env}{python} -m wxops.deploy.receive \\
    --settings "$hooks_dir/{settings}"
"""


@dataclass
class HookSettings:
    """How the hook runs a push; stored as ``hooks/wxops-hook.json``.

    Attributes:
        git_dir: the bare repository.
        branch: pushes to ``refs/heads/<branch>`` trigger the chain; others are ignored.
        config: the project's config file, relative to the repository root.
        python: interpreter that runs wxops, the project's tests and the pipeline.
        env: extra environment for all of them (e.g. ``MLFLOW_TRACKING_URI``, ``PYTHONPATH``).
        test_command: the project's test command (``{python}`` is replaced); empty list:
            ``python -m pytest -q -m "not gpu"``.
        require_tests: a push whose test command collects no test stops the chain.
        state_dir: the persistent work tree and lock live here. The work tree is reused so
            the embedded tracking store (``mlflow.db``, ``mlartifacts/``) and the stage
            cache survive between pushes; everything else is cleaned before each push.
        log_dir: one log file per push.
        step_timeout: seconds each step may take before it is stopped.
    """

    git_dir: str
    branch: str = "main"
    config: str = "wxops.yaml"
    python: str = field(default_factory=lambda: sys.executable)
    env: dict[str, str] = field(default_factory=dict)
    test_command: list[str] = field(default_factory=list)
    require_tests: bool = False
    state_dir: str = ""
    log_dir: str = ""
    step_timeout: float = 3600.0

    def __post_init__(self) -> None:
        if not self.state_dir:
            self.state_dir = str(Path(self.git_dir) / "wxops")
        if not self.log_dir:
            self.log_dir = str(Path(self.state_dir) / "logs")

    @property
    def work_dir(self) -> Path:
        """The checked-out project (a clone of the bare repository)."""
        return Path(self.state_dir) / "project"

    @property
    def lock_file(self) -> Path:
        """Held for the whole chain, so concurrent pushes queue instead of overlapping."""
        return Path(self.state_dir) / "push.lock"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> HookSettings:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def clean_git_env() -> dict[str, str]:
    """This environment without ``GIT_*`` variables.

    Inside a hook git sets ``GIT_DIR`` (often to ``.``) and friends; a child ``git`` that
    inherits them would act on the bare repository instead of its own work tree.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def bare_repo_path(path: Path) -> Path:
    """The absolute path of the bare repository at ``path``.

    Raises:
        HookInstallError: ``path`` is missing, not a git repository, or a work tree.
    """
    if not path.exists():
        raise HookInstallError(
            f"{path}: no such folder; create the shared repository with `git init --bare {path}`"
        )
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--is-bare-repository", "--absolute-git-dir"],
            capture_output=True, text=True, timeout=30, env=clean_git_env(),
        )
    except OSError as exc:
        raise HookInstallError(f"cannot run git to inspect {path}: {exc}") from exc
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        raise HookInstallError(
            f"{path}: not a git repository; the hook goes into the bare repository "
            f"everyone pushes to (create one with `git init --bare {path}`)"
        )
    is_bare, git_dir = lines
    resolved = path.resolve()
    if is_bare != "true" or Path(git_dir).resolve() != resolved:
        raise HookInstallError(
            f"{path}: a work tree, not a bare repository; install the hook in the shared "
            "bare repository that receives the pushes (e.g. /srv/git/project.git)"
        )
    return resolved


def check_interpreter(settings: HookSettings) -> None:
    """Fail at install time, not at the first push, when the hook's Python lacks wxops.

    Raises:
        HookInstallError: the interpreter cannot be run or cannot import wxops.
    """
    cmd = [settings.python, "-c", "import wxops.deploy.receive"]
    try:
        done = subprocess.run(cmd, env={**clean_git_env(), **settings.env},
                              capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise HookInstallError(
            f"--python {settings.python}: cannot run it ({exc.strerror}); "
            "give the interpreter of the environment that has wxops"
        ) from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise HookInstallError(
            f"--python {settings.python} cannot import wxops ({last}); give the interpreter "
            "of the environment that has wxops, or --env PYTHONPATH=/path/to/wxops/src"
        )


def install_hook(settings: HookSettings) -> list[str]:
    """Install the post-receive hook into ``settings.git_dir``.

    An existing post-receive hook that wxops did not write is kept as
    ``post-receive.wxops-chained`` and still runs on every push; a wxops hook is replaced,
    so installing twice only updates the settings.

    Args:
        settings: where and how the hook runs; ``git_dir`` must be a bare repository.

    Returns:
        Lines saying what was done, for the CLI to print.

    Raises:
        HookInstallError: not a bare repository, an interpreter without wxops, folders not
            writable, or both an old hook and an old chained hook exist (wxops will not
            pick one to throw away).
    """
    git_dir = bare_repo_path(Path(settings.git_dir))
    settings.git_dir = str(git_dir)
    check_interpreter(settings)
    hooks = git_dir / "hooks"
    hook = hooks / HOOK_NAME
    chained = hooks / CHAINED_NAME
    notes: list[str] = []
    try:
        hooks.mkdir(exist_ok=True)
        for folder in (settings.state_dir, settings.log_dir):
            Path(folder).mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise HookInstallError(f"{folder}: not writable by this user")
        if hook.exists() and MARKER not in hook.read_text(errors="replace"):
            if chained.exists():
                raise HookInstallError(
                    f"{hook} and {chained} both exist; merge them into one by hand, then "
                    "install again"
                )
            hook.rename(chained)
            notes.append(f"kept the existing hook as {chained.name}; it runs first")
            if not os.access(chained, os.X_OK):
                notes.append(f"note: {chained.name} is not executable, so git never ran it "
                             "and neither will wxops (chmod +x it to change that)")
        settings.save(hooks / SETTINGS_NAME)
        hook.write_text(_script(settings), encoding="utf-8")
        hook.chmod(0o755)
    except OSError as exc:
        raise HookInstallError(f"cannot install the hook in {hooks}: {exc}") from exc
    notes.append(f"installed {hook}: pushes to {settings.branch} run tests, then wxops run")
    notes.append(f"logs: {settings.log_dir}; work tree and lock: {settings.state_dir}")
    return notes


def uninstall_hook(git_dir: Path) -> list[str]:
    """Remove the wxops hook and put back the chained one, if any."""
    repo = bare_repo_path(git_dir)
    hooks = repo / "hooks"
    hook, chained = hooks / HOOK_NAME, hooks / CHAINED_NAME
    if not hook.exists() or MARKER not in hook.read_text(errors="replace"):
        raise HookInstallError(f"{hook}: no wxops hook installed here")
    hook.unlink()
    (hooks / SETTINGS_NAME).unlink(missing_ok=True)
    if chained.exists():
        chained.rename(hook)
        return [f"removed the wxops hook; restored the earlier {HOOK_NAME} hook"]
    return ["removed the wxops hook"]


def _script(settings: HookSettings) -> str:
    env = "".join(f"{shlex.quote(f'{k}={v}')} " for k, v in sorted(settings.env.items()))
    return _SCRIPT.format(marker=MARKER, chained=CHAINED_NAME, settings=SETTINGS_NAME,
                          env=env, python=shlex.quote(settings.python))
