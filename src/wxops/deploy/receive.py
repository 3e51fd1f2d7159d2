"""What the post-receive hook runs for each push (``python -m wxops.deploy.receive``).

For a push to the main branch: take the lock (a second push waits its turn), check the
pushed commit out into the hook's work tree and clean it, validate the config, run the
project's tests, then ``wxops run``. Every line goes both to the pusher (git shows a
hook's output as ``remote:`` lines) and to a log file per push. The first failing step
ends the chain, so a broken test or an invalid config never reaches training and the
champion stays as it was.

A post-receive hook cannot reject a push (the refs are already updated when it runs), so
the exit status only tells git and the log whether the chain succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

from wxops.deploy.hook import HookSettings, clean_git_env
from wxops.exit_codes import EXIT_GATE_REJECTED

ZERO_SHA = "0" * 40
#: Kept in the work tree between pushes: the embedded tracking store and the stage cache.
KEEP_BETWEEN_PUSHES: tuple[str, ...] = ("mlflow.db", "mlartifacts/", ".wxops/")


@dataclass(frozen=True)
class RefUpdate:
    """One line of a post-receive hook's input: ``<old> <new> <ref>``."""

    old: str
    new: str
    ref: str


def parse_updates(text: str) -> list[RefUpdate]:
    """The ref updates git passes on standard input (blank lines ignored)."""
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            updates.append(RefUpdate(*parts))
    return updates


class PushLog:
    """Writes each line to the pusher (``remote:``) and to the push's log file."""

    def __init__(self, out: TextIO, log: IO[str]) -> None:
        self._out = out
        self._log = log

    def say(self, message: str) -> None:
        for line in message.splitlines() or [""]:
            self._out.write(f"wxops: {line}\n")
            self._log.write(f"{_now()} {line}\n")
        self._out.flush()
        self._log.flush()

    def relay(self, line: str) -> None:
        """A line of a step's own output, indented under the step."""
        self._out.write(f"  | {line}")
        self._log.write(f"  | {line}")
        self._out.flush()
        self._log.flush()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def open_log(log_dir: Path, sha: str) -> IO[str]:
    """A new log file for this push, named by time, commit and process (two pushes of one
    commit can arrive together)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return (log_dir / f"{stamp}-{sha[:12]}-{os.getpid()}.log").open("x", encoding="utf-8")


@contextlib.contextmanager
def push_lock(path: Path, log: PushLog) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; say so when a push has to queue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.say("another push is being processed; queued behind it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        log.say(f"lock acquired at {_now()}")
        try:
            yield
        finally:
            log.say(f"lock released at {_now()}")
            fcntl.flock(handle, fcntl.LOCK_UN)


class StepFailed(Exception):
    """A step of the chain failed; the message says which and what to do."""


def run_step(
    log: PushLog, name: str, cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float,
    ok_codes: tuple[int, ...] = (0,),
) -> int:
    """Run one step, relaying its output line by line; raise :class:`StepFailed` on failure.

    Returns:
        The exit status (one of ``ok_codes``).
    """
    log.say(f"[{name}] {shlex.join(cmd)}")
    started = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                bufsize=1)
    except OSError as exc:
        raise StepFailed(f"[{name}] cannot start {cmd[0]}: {exc}") from exc
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.relay(line)
        code = proc.wait()
    finally:
        timer.cancel()
    seconds = time.monotonic() - started
    if killed.is_set():
        raise StepFailed(f"[{name}] stopped after {timeout:.0f} s (step_timeout in the settings)")
    if code not in ok_codes:
        raise StepFailed(f"[{name}] failed with exit status {code} after {seconds:.1f} s")
    log.say(f"[{name}] ok ({seconds:.1f} s)")
    return code


def checkout(log: PushLog, settings: HookSettings, sha: str, env: dict[str, str]) -> Path:
    """Bring the hook's work tree to ``sha`` and remove everything not in the commit.

    The tracking store and the stage cache (:data:`KEEP_BETWEEN_PUSHES`) stay: the first
    push creates the experiment with its artifact folder in this work tree, so it must be
    the same folder on every push.
    """
    work = settings.work_dir
    timeout = settings.step_timeout
    if not (work / ".git").is_dir():
        work.parent.mkdir(parents=True, exist_ok=True)
        run_step(log, "checkout", ["git", "clone", "--quiet", "--no-checkout",
                                   settings.git_dir, str(work)],
                 cwd=work.parent, env=env, timeout=timeout)
    run_step(log, "checkout", ["git", "fetch", "--quiet", "--force", "origin",
                               "+refs/heads/*:refs/remotes/origin/*"],
             cwd=work, env=env, timeout=timeout)
    run_step(log, "checkout", ["git", "checkout", "--quiet", "--force", "--detach", sha],
             cwd=work, env=env, timeout=timeout)
    excludes = [arg for keep in KEEP_BETWEEN_PUSHES for arg in ("-e", keep)]
    run_step(log, "checkout", ["git", "clean", "-ffdxq", *excludes],
             cwd=work, env=env, timeout=timeout)
    return work


def process_push(settings: HookSettings, sha: str, *, out: TextIO) -> int:
    """Run the chain for commit ``sha``: checkout, validate, test, train.

    Returns:
        0 when the pipeline ran and promoted (or had nothing to decide), 6
        (:data:`~wxops.exit_codes.EXIT_GATE_REJECTED`) when the gate rejected the new
        version, 1 when a step failed or the hook could not run at all.
    """
    try:
        log_file = open_log(Path(settings.log_dir), sha)
    except OSError as exc:
        out.write(
            f"wxops: cannot write the push log in {settings.log_dir}: "
            f"{exc.strerror or exc}.\n"
            "wxops: nothing was run for this push; the champion is unchanged.\n"
            "wxops: fix: make that folder writable by the user git runs as, or reinstall "
            "the hook with --log-dir.\n"
        )
        out.flush()
        return 1
    with log_file:
        log = PushLog(out, log_file)
        log.say(f"push of {settings.branch} at {sha[:12]}; log: {log_file.name}")
        try:
            with push_lock(settings.lock_file, log):
                return _chain(log, settings, sha)
        except OSError as exc:
            log.say(f"cannot take the lock {settings.lock_file}: {exc}; nothing was run")
            return 1


def _chain(log: PushLog, settings: HookSettings, sha: str) -> int:
    started = time.monotonic()
    env = {**clean_git_env(), **settings.env, "NO_COLOR": "1", "TERM": "dumb"}
    py = settings.python
    timeout = settings.step_timeout
    try:
        work = checkout(log, settings, sha, env)
        config = work / settings.config
        run_step(log, "validate", [py, "-m", "wxops.cli", "config", "validate",
                                   "--config", str(config)],
                 cwd=work, env=env, timeout=timeout)
        test_cmd = [a.replace("{python}", py) for a in settings.test_command] or [
            py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not gpu"]
        code = run_step(log, "test", test_cmd, cwd=work, env=env, timeout=timeout,
                        ok_codes=(0,) if settings.require_tests else (0, 5))
        if code == 5:
            log.say("[test] no tests collected; going on (install with --require-tests "
                    "to stop here instead)")
        result_file = config.parent / "wxops-out" / "result.json"
        result_file.unlink(missing_ok=True)
        code = run_step(log, "train", [py, "-m", "wxops.cli", "run", "--config", str(config),
                                       "--quiet"], cwd=work, env=env, timeout=timeout,
                        ok_codes=(0, EXIT_GATE_REJECTED))
    except StepFailed as exc:
        log.say(f"{exc}")
        log.say("stopped: no training after a failed step; the champion is unchanged")
        return 1
    log.say(_summary(result_file))
    if code == EXIT_GATE_REJECTED:
        log.say("the quality gate rejected the new version: it stays challenger and the "
                f"champion is unchanged (exit {EXIT_GATE_REJECTED})")
    log.say(f"done in {time.monotonic() - started:.1f} s")
    return code


def _summary(result_file: Path) -> str:
    """One line on what the pipeline registered, read from its ``result.json``."""
    if not result_file.is_file():
        return "nothing changed since the last run: every stage cached, no new version"
    result = json.loads(result_file.read_text(encoding="utf-8"))
    alias = "champion" if result.get("became_champion") else "challenger"
    metrics = result.get("metrics", {}).get(result.get("best"), {})
    score = f" (val_rmse {metrics['val_rmse']:.0f} m)" if "val_rmse" in metrics else ""
    return (f"model {result['registered_model']} version {result['version']} is {alias}; "
            f"best configuration {result['best']}{score}; tracking {result['tracking_uri']}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the hook: read the pushed refs on stdin, run the chain for main."""
    parser = argparse.ArgumentParser(prog="python -m wxops.deploy.receive")
    parser.add_argument("--settings", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        settings = HookSettings.load(args.settings)
    except (OSError, ValueError, TypeError) as exc:
        print(f"wxops: cannot read the hook settings {args.settings}: {exc}; "
              "reinstall with `wxops hook install`", flush=True)
        return 1
    wanted = f"refs/heads/{settings.branch}"
    status = 0
    for update in parse_updates(sys.stdin.read()):
        if update.ref != wanted:
            print(f"wxops: {update.ref}: only pushes to {settings.branch} are tested and "
                  "trained", flush=True)
        elif update.new == ZERO_SHA:
            print(f"wxops: {settings.branch} was deleted; nothing to run", flush=True)
        else:
            status = max(status, process_push(settings, update.new, out=sys.stdout))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
