"""The Dask worker plugin (its own module: importing it imports distributed)."""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin

from wxops.worker_setup import WORKERS_ENV, setup_worker_process


class WorkerSetup(WorkerPlugin):
    """Applies :func:`wxops.worker_setup.setup_worker_process` on each (new) worker.

    Args:
        tasks_per_host: task threads of all workers per host when the plugin was
            registered (from the scheduler), so that workers sharing a host share its
            cores; a worker on a host not listed counts its own task threads.
    """

    name = "wxops-setup"
    idempotent = True

    def __init__(self, tasks_per_host: dict[str, int] | None = None) -> None:
        self.tasks_per_host = dict(tasks_per_host or {})

    def setup(self, worker: Any) -> None:
        import os

        from distributed.comm import get_address_host

        local = os.environ.get(WORKERS_ENV)  # a local cluster says how many share the host
        if local:
            setup_worker_process(int(local))
            return
        own = max(1, int(worker.state.nthreads))
        shared = self.tasks_per_host.get(get_address_host(worker.address), own)
        setup_worker_process(max(own, shared))
