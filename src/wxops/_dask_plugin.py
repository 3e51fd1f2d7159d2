"""The Dask worker plugin (its own module: importing it imports distributed)."""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin

from wxops.execution import setup_worker_process


class WorkerSetup(WorkerPlugin):
    """Applies :func:`wxops.execution.setup_worker_process` on each (new) worker."""

    name = "wxops-setup"
    idempotent = True

    def setup(self, worker: Any) -> None:
        setup_worker_process()
