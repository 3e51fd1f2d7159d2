"""Executors for the heavy steps: in this process, or as Dask tasks.

``execution.executor: local`` runs tasks one after another here; ``dask`` starts a local
cluster of worker processes (one task at a time each, with cores // workers threads for
BLAS and PyTorch, so two workers on two cores do not oversubscribe them);
``tcp://host:port`` connects to a running scheduler (HPC through dask-jobqueue,
Kubernetes...). Tasks are coarse (a station chunk, a model configuration) and carry
paths, not data, so scheduling and serialisation stay cheap. Workers there need the files
at the same paths (a shared file system) and wxops installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from wxops.errors import ExecutorError
from wxops.worker_setup import WORKER_ENV, WORKERS_ENV

if TYPE_CHECKING:
    from wxops.config import ExecutionConfig, SlurmConfig

T = TypeVar("T")
R = TypeVar("R")

class Executor(Protocol):
    """Maps a function over tasks and returns the results in task order."""

    in_process: bool
    """True when tasks run in the calling process (callbacks such as progress work)."""

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]: ...


class LocalExecutor:
    """Runs each task in this process, in order."""

    in_process = True

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        return [fn(task) for task in tasks]


class DaskExecutor:
    """Runs tasks on a Dask cluster; a task lost with its worker is retried elsewhere."""

    in_process = False

    def __init__(self, client: Any, *, retries: int = 2) -> None:
        self.client = client
        self.retries = retries

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        from distributed import KilledWorker

        if not tasks:
            return []
        futures = self.client.map(fn, list(tasks), pure=False, retries=self.retries)
        try:
            return list(self.client.gather(futures))
        except KilledWorker as exc:
            raise ExecutorError(
                f"Dask lost a worker on every attempt of task {exc.task!r}; the workers may be "
                "running out of memory (give them more, or lower data.nwp.chunk_stations)"
            ) from exc
        except OSError as exc:
            raise ExecutorError(f"the Dask scheduler went away while running tasks: {exc}") from exc
        finally:
            for future in futures:
                future.release()


#: The scheduler's HTTP routes (health, metrics) on a free port and no dashboard. Without a
#: dashboard address it still binds 8787 and warns "Port 8787 is already in use" whenever
#: another Dask cluster runs on the machine.
NO_DASHBOARD: dict[str, object] = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}


def slurm_cluster(cfg: SlurmConfig, log_directory: Path) -> Any:
    """A dask-jobqueue ``SLURMCluster`` for ``execution.slurm`` (no job submitted yet).

    One worker process per job, with the worker environment (one thread per library)
    exported before the setup lines, so a ``module load`` can still override it.
    """
    import sys

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise ExecutorError("execution.executor: slurm needs dask-jobqueue; "
                            "`pip install 'wxops[slurm]'`") from exc
    log_directory.mkdir(parents=True, exist_ok=True)
    extra = list(cfg.job_extra)
    if cfg.gpus:
        extra.append(f"--gres=gpu:{cfg.gpus}")
    prologue = [f"export {k}={v}" for k, v in WORKER_ENV.items()] + list(cfg.setup)
    return SLURMCluster(
        cores=cfg.cores, processes=1, memory=cfg.memory.replace(" ", ""), queue=cfg.queue,
        account=cfg.account, walltime=cfg.walltime, job_name="wxops-worker",
        job_extra_directives=extra, job_script_prologue=prologue,
        python=cfg.python or sys.executable, interface=cfg.interface,
        log_directory=str(log_directory), local_directory=str(log_directory),
        scheduler_options=NO_DASHBOARD, death_timeout=120,
    )


def _check_slurm_job(cluster: Any, logs: Path) -> None:
    """``sbatch --test-only`` on the worker job: a wrong partition, account or resource
    request fails here with Slurm's own words, instead of as workers that never come."""
    import subprocess

    script = logs / "wxops-worker.sbatch"
    script.write_text(cluster.job_script(), encoding="utf-8")
    try:
        check = subprocess.run(["sbatch", "--test-only", str(script)], capture_output=True, text=True,
                               timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        cluster.close()
        raise ExecutorError(f"cannot run sbatch ({exc}); run wxops on a Slurm login node, "
                            "or set execution.executor: local") from exc
    if check.returncode != 0:
        cluster.close()
        words = " ".join(line.removeprefix("sbatch: error: ") for line in check.stderr.strip().splitlines())
        raise ExecutorError(f"Slurm refuses the worker job ({words}); check execution.slurm "
                            f"(queue, account, memory, walltime, gpus); job script: {script}")


@contextlib.contextmanager
def open_executor(cfg: ExecutionConfig, project_dir: Path | None = None) -> Iterator[Executor]:
    """The configured executor; a local cluster is shut down on exit.

    The client is not made dask's default: tasks are submitted through it explicitly, and
    the caller's own dask computations (xarray in the same process) stay untouched.
    """
    if cfg.executor == "local":
        yield LocalExecutor()
        return
    from distributed import Client, LocalCluster

    from wxops._dask_plugin import WorkerSetup
    cluster: Any = None
    try:
        if cfg.executor == "dask":
            from wxops.startup import THREAD_ENV_VARS, thread_budget

            threads = str(thread_budget(cfg.workers).threads)
            env = {**WORKER_ENV, **dict.fromkeys(THREAD_ENV_VARS, threads),
                   WORKERS_ENV: str(cfg.workers)}
            cluster = LocalCluster(n_workers=cfg.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=env, scheduler_kwargs=NO_DASHBOARD)
            client = Client(cluster, set_as_default=False)
        elif cfg.executor == "slurm":
            logs = cfg.slurm.log_directory or (project_dir or Path.cwd()) / ".wxops" / "slurm"
            cluster = slurm_cluster(cfg.slurm, logs)
            _check_slurm_job(cluster, logs)
            cluster.scale(jobs=cfg.slurm.jobs)
            client = Client(cluster, set_as_default=False)
            try:
                client.wait_for_workers(1, timeout=cfg.slurm.start_timeout_s)
            except TimeoutError as exc:
                client.close()
                with contextlib.suppress(AssertionError):  # dask-jobqueue asserts on jobs still queued
                    cluster.close()
                raise ExecutorError(
                    f"no Slurm job started a worker within {cfg.slurm.start_timeout_s:.0f} s; "
                    f"check `squeue` and the job logs in {logs} (execution.slurm.setup, python), "
                    "or raise execution.slurm.start_timeout_s for a busy queue") from exc
        else:
            client = Client(cfg.executor, timeout=f"{cfg.connect_timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise ExecutorError(f"cannot reach the Dask scheduler at {cfg.executor}: {exc}; "
                            "start it (dask scheduler) or set execution.executor: local") from exc
    try:
        client.register_plugin(WorkerSetup(_tasks_per_host(client)))
        yield DaskExecutor(client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _tasks_per_host(client: Any) -> dict[str, int]:
    """Task threads of the cluster's workers per host (their thread budgets share it)."""
    from collections import Counter

    try:
        info = client.scheduler_info(n_workers=-1)
    except TypeError:  # older distributed lists every worker without the argument
        info = client.scheduler_info()
    per_host: Counter[str] = Counter()
    for worker in info.get("workers", {}).values():
        per_host[str(worker.get("host"))] += int(worker.get("nthreads", 1))
    return dict(per_host)
