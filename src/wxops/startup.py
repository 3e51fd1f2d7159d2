"""Process-wide settings, applied once when the CLI starts (never in constructors)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

#: Set by ``wxops -v``: every command's process set-up lets library INFO lines through.
VERBOSE_ENV = "WXOPS_VERBOSE"


def configure_process(*, verbose: bool = False) -> None:
    """Quiet third-party noise that says nothing to a wxops user; keep real warnings.

    ``verbose`` (or ``WXOPS_VERBOSE=1``, which ``wxops -v`` sets) keeps MLflow's INFO lines.
    """
    verbose = verbose or os.environ.get(VERBOSE_ENV) == "1"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # A gone tracking server is noticed in ~3 s (then runs go to the outbox), not after
    # MLflow's default 7 retries with exponential backoff (minutes).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    level = logging.INFO if verbose else logging.WARNING
    # MLflow sets its loggers from MLFLOW_LOGGING_LEVEL (default INFO) when it is first
    # imported, which is after this: without it "Creating initial MLflow database tables"
    # reaches the terminal. Child processes (`wxops ui`, Dask workers) inherit it.
    if verbose:
        os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO"
    else:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(level)
    logging.getLogger("alembic").setLevel(level)
    # urllib3 announces each retry; wxops says once itself when the server is gone.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    # cloudpickle is deliberate: wxops' own transformers travel inside the model.
    logging.getLogger("mlflow.sklearn").setLevel(logging.INFO if verbose else logging.ERROR)
    warnings.filterwarnings("ignore", message=".*pickle or cloudpickle format.*")
    warnings.filterwarnings("ignore", message=".*dataset source can be interpreted.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="mlflow")


# --- thread budget -----------------------------------------------------------------------

#: Variables read by OpenMP (PyTorch's libgomp too), MKL and OpenBLAS when they load; set
#: so that libraries imported later (and child processes) follow the same budget.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ThreadBudget:
    """Threads each process of a group may use, so that processes x threads <= cores."""

    cores: int
    """Cores this process may use (CPU affinity, capped by a cgroup CPU quota)."""
    processes: int
    """Processes sharing those cores (serving workers, Dask workers)."""
    threads: int
    """Threads per process for PyTorch, OpenMP, MKL and OpenBLAS."""
    overridden: bool = False
    """True when ``threads`` came from a flag rather than cores // processes."""


def available_cores(cgroup_root: Path = _CGROUP) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota.

    ``os.cpu_count()`` counts the host's cores; in a container limited to 2 CPUs on a
    64-core node, sizing thread pools by it starts 64 spinning threads per process.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def cgroup_cpu_quota(root: Path = _CGROUP) -> float | None:
    """CPUs granted by the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or
    None when unlimited. Every level up to the root counts (the tightest quota wins)."""
    limits: list[float] = []
    for own in _own_cgroups():
        version, controllers, rel = own
        if version == 2:
            candidates = [root / rel.lstrip("/"), root / "unified" / rel.lstrip("/")]
        elif "cpu" in controllers.split(","):
            candidates = [root / name / rel.lstrip("/") for name in ("cpu", "cpu,cpuacct",
                                                                     "cpuacct,cpu")]
        else:
            continue
        for base in candidates:
            for folder in (base, *base.parents):
                if not folder.is_relative_to(root):
                    break
                limit = _read_quota(folder)
                if limit is not None:
                    limits.append(limit)
    return min(limits) if limits else None


def _own_cgroups() -> list[tuple[int, str, str]]:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        found.append((2 if hierarchy == "0" and not controllers else 1, controllers, rel or "/"))
    return found


def _read_quota(folder: Path) -> float | None:
    with contextlib.suppress(OSError, ValueError):
        quota, period = [*(folder / "cpu.max").read_text().split(), "", ""][:2]
        if quota and quota != "max" and period:
            return int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        quota_us = int((folder / "cpu.cfs_quota_us").read_text())
        period_us = int((folder / "cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    return None


def thread_budget(processes: int = 1, threads: int | None = None) -> ThreadBudget:
    """The budget of one of ``processes`` processes sharing this machine's cores.

    Args:
        processes: processes started side by side (serving or Dask workers).
        threads: explicit threads per process (a ``--threads`` flag); None: cores //
            processes, at least 1.
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, not {processes}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, not {threads}")
    cores = available_cores()
    if threads is not None:
        return ThreadBudget(cores, processes, threads, overridden=True)
    return ThreadBudget(cores, processes, max(1, cores // processes))


def apply_thread_budget(budget: ThreadBudget) -> None:
    """Hold this process to ``budget.threads`` threads in every numerical library.

    The environment variables cover libraries loaded later (and child processes);
    threadpoolctl resizes the OpenMP/BLAS pools already loaded; PyTorch's intra-op pool
    is set directly when torch is imported (it reads ``OMP_NUM_THREADS`` when it is not).
    """
    n = budget.threads
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    os.environ["WXOPS_BUDGET_CORES"] = str(budget.cores)
    os.environ["WXOPS_BUDGET_PROCESSES"] = str(budget.processes)
    os.environ["WXOPS_BUDGET_THREADS"] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


def thread_settings() -> dict[str, int]:
    """Threads the loaded libraries will use now, read from the libraries themselves.

    Keys: ``torch`` (intra-op threads, when torch is imported) and one per threadpoolctl
    API (``openmp``, ``blas``; the largest pool of each).
    """
    from threadpoolctl import threadpool_info

    settings: dict[str, int] = {}
    for pool in threadpool_info():
        api = str(pool.get("user_api"))
        settings[api] = max(settings.get(api, 0), int(pool.get("num_threads", 0)))
    torch = sys.modules.get("torch")
    if torch is not None:
        settings["torch"] = int(torch.get_num_threads())
    return settings
