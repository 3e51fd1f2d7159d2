"""How the pipeline reports progress: silent by default, Rich bars on a terminal, plain
lines in order when the output is a file or a pipe."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TextIO


class Reporter(Protocol):
    """What the pipeline tells the person running it."""

    def stage(self, name: str) -> contextlib.AbstractContextManager[None]: ...
    def skip(self, name: str, why: str) -> None: ...
    def epochs(self, name: str, total: int) -> Callable[[int, float, float | None], None]: ...
    def info(self, message: str) -> None: ...
    def transfer(self, name: str, total: int | None) -> Callable[[int], None]: ...


class SilentReporter:
    """Reports nothing (library use and tests)."""

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield

    def skip(self, name: str, why: str) -> None:
        return None

    def epochs(self, name: str, total: int) -> Callable[[int, float, float | None], None]:
        return lambda epoch, train, val: None

    def info(self, message: str) -> None:
        return None

    def transfer(self, name: str, total: int | None) -> Callable[[int], None]:
        return lambda n_bytes: None


class RichReporter:
    """A Rich progress bar per stage and per training epoch."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[loss]}"), TimeElapsedColumn(),
            console=self.console, transient=False,
        )

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        task = self.progress.add_task(f"[bold]{name}", total=1, loss="")
        yield
        self.progress.update(task, completed=1)

    def skip(self, name: str, why: str) -> None:
        self.progress.add_task(f"[dim]{name}: {why}", total=1, completed=1, loss="")

    def epochs(self, name: str, total: int) -> Callable[[int, float, float | None], None]:
        task = self.progress.add_task(f"  train {name}", total=total, loss="")

        def advance(epoch: int, train: float, val: float | None) -> None:
            loss = f"train {train:.3f}" + (f" val {val:.3f}" if val is not None else "")
            total_now = max(total, epoch + 1)
            self.progress.update(task, completed=epoch + 1, total=total_now, loss=loss)

        return advance

    def info(self, message: str) -> None:
        self.progress.console.print(message)

    def transfer(self, name: str, total: int | None) -> Callable[[int], None]:
        """A download's bar, in MiB (total None: the server did not say the size)."""
        mib = 1 << 20
        task = self.progress.add_task(f"  download {name}", total=None if total is None else total / mib,
                                      loss="MiB")

        def advance(n_bytes: int) -> None:
            self.progress.advance(task, n_bytes / mib)

        return advance


class PlainReporter:
    """One line per stage, skip, message and a few epochs, written as they happen.

    Rich draws its bars only on a terminal; elsewhere it prints them when the display
    stops, after every message printed meanwhile. Here each line is written in order.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._pending: dict[str, str] = {}  # the latest epoch line not yet written, per model

    def __enter__(self) -> PlainReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._flush()

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _flush(self) -> None:
        for line in self._pending.values():
            self._write(line)
        self._pending.clear()

    def _say(self, line: str) -> None:
        self._flush()  # a model's last epoch before whatever comes next
        self._write(line)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self._say(f"{name} ({time.perf_counter() - start:.1f} s)")

    def skip(self, name: str, why: str) -> None:
        self._say(f"{name}: {why}")

    def epochs(self, name: str, total: int) -> Callable[[int, float, float | None], None]:
        every = max(1, total // 4)  # about four lines per configuration, and its last epoch
        self._flush()

        def advance(epoch: int, train: float, val: float | None) -> None:
            n = epoch + 1
            loss = f"train {train:.3f}" + (f" val {val:.3f}" if val is not None else "")
            known = total > 1 and n <= total  # boosting announces 1 and reports per stage
            line = f"  train {name}: {n}/{total} {loss}" if known else f"  train {name}: {n} {loss}"
            shown = n % every == 0 or n == total if known else n & (n - 1) == 0  # 1, 2, 4, 8, ...
            if shown:
                self._pending.pop(name, None)
                self._flush()  # another model's last epoch first
                self._write(line)
            else:
                self._pending[name] = line

        return advance

    def info(self, message: str) -> None:
        self._say(message)

    def transfer(self, name: str, total: int | None) -> Callable[[int], None]:
        size = "" if total is None else f" ({total / (1 << 20):.1f} MiB)"
        self._say(f"  download {name}{size}")
        return lambda n_bytes: None


def terminal_reporter() -> RichReporter | PlainReporter:
    """Rich bars when stderr is a terminal, else :class:`PlainReporter`."""
    from rich.console import Console

    return RichReporter() if Console(stderr=True).is_terminal else PlainReporter()
