"""Executors: local order, an unreachable scheduler, a real local cluster."""

from __future__ import annotations

import socket

import pytest

from wxops.config import ExecutionConfig
from wxops.errors import ExecutorError
from wxops.execution import open_executor


def _square(x: int) -> int:
    return x * x


def test_local_executor_keeps_task_order() -> None:
    with open_executor(ExecutionConfig()) as executor:
        assert executor.in_process
        assert executor.map(_square, [3, 1, 2]) == [9, 1, 4]


def test_unreachable_scheduler_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = ExecutionConfig(executor=f"tcp://127.0.0.1:{port}", connect_timeout_s=1.0)
    with pytest.raises(ExecutorError, match=rf"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:{port}"), \
            open_executor(cfg):
        pass


def _worker_threads(_: int) -> tuple[int, str]:
    import os

    import torch

    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS", "")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_local_cluster_workers_share_the_cores(workers: int) -> None:
    """Each worker of a local cluster gets cores // workers threads (read from torch)."""
    from wxops.startup import available_cores

    want = max(1, available_cores() // workers)
    with open_executor(ExecutionConfig(executor="dask", workers=workers)) as executor:
        assert not executor.in_process
        assert executor.map(_worker_threads, list(range(workers))) == [(want, str(want))] * workers
