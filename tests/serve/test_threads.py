"""Thread budget per worker and the bounded prediction pool, through real servers.

Journey 6 (serve the champion): ``wxops serve`` started as a user starts it, pinned to
chosen cores with CPU affinity, reports in ``/metrics`` the threads its libraries use
(read from PyTorch and threadpoolctl inside each worker), and they follow the cores and
the worker count. The pool tests drive a real server on loopback: a huge batch runs off
the event loop while small requests are answered, and a full queue answers 503 with
``Retry-After``, counted in ``/metrics``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.serve.conftest import PREDICT_TOKEN, Registry, example_frame, ready_process, start_server
from tests.serve.test_cli import _LAUNCH, _free_port
from wxops.config import parse_config
from wxops.pipeline import run_pipeline
from wxops.startup import available_cores, cgroup_cpu_quota, thread_budget

MLP_MODEL = "threadmlp"


# --- the budget itself -------------------------------------------------------------------


def test_budget_divides_the_cores_among_processes() -> None:
    cores = available_cores()
    assert thread_budget(1).threads == cores
    assert thread_budget(cores).threads == 1
    assert thread_budget(4 * cores).threads == 1  # never 0
    assert thread_budget(2, threads=5).threads == 5
    assert thread_budget(2, threads=5).overridden


@pytest.mark.parametrize(("processes", "threads", "message"), [
    (0, None, "processes must be >= 1"), (1, 0, "threads must be >= 1")])
def test_budget_refuses_nonsense(processes: int, threads: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        thread_budget(processes, threads)


def test_cgroup_quota_v2_and_v1(tmp_path: Path) -> None:
    """The quota of this process's cgroup or any parent counts; 'max' and junk do not."""
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(v2) == pytest.approx(1.5)
    assert available_cores(v2) == 1
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(v2) is None
    (v2 / "cpu.max").write_text("garbage\n")
    assert cgroup_cpu_quota(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    own = Path("/proc/self/cgroup").read_text()
    if ":cpu" not in own and "cpu," not in own:
        pytest.skip("this process has no cgroup v1 cpu controller line")
    assert cgroup_cpu_quota(v1) == pytest.approx(3.0)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(v1) is None


# --- through `wxops serve` ---------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp_registry(registry: Registry) -> Registry:
    """A small PyTorch MLP registered as ``threadmlp`` (the champion's model type)."""
    run_pipeline(parse_config({  # type: ignore[arg-type]
        "seed": 7,
        "models": [{"name": "mlp-tiny", "type": "mlp", "hidden_dim": 8, "epochs": 1}],
        "tracking": {"uri": registry.uri, "registered_model": MLP_MODEL},
    }), project_dir=registry.project)
    return registry


@contextmanager
def _pinned_serve(registry: Registry, cores: set[int], *args: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
           "NO_PROXY": "127.0.0.1,localhost"}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "PROMETHEUS_MULTIPROC_DIR", "WXOPS_SERVE_TOKENS"):
        env.pop(var, None)
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, "serve", "--tracking-uri", registry.uri,
         "--model", f"{MLP_MODEL}@champion", "--port", str(port), "--poll", "0",
         "--token-file", str(registry.token_file), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cores))
    with ready_process(proc, f"http://127.0.0.1:{port}", within=90) as url:
        yield url


def _worker_threads(url: str, workers: int) -> dict[str, dict[str, float]]:
    """Per worker (pid, or '' with one worker): library/quantity -> value from /metrics."""
    deadline = time.monotonic() + 60
    while True:
        text = requests.get(f"{url}/metrics", timeout=10).text
        found: dict[str, dict[str, float]] = {}
        for family in text_string_to_metric_families(text):
            if family.name not in ("wxops_worker_threads", "wxops_thread_budget"):
                continue
            for sample in family.samples:
                key = sample.labels.get("library") or sample.labels["quantity"]
                found.setdefault(sample.labels.get("pid", ""), {})[key] = sample.value
        # every worker has loaded the MLP (torch) once its torch gauge is there
        if len(found) == workers and all("torch" in v for v in found.values()):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {workers} workers with torch loaded, got {found}")
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "flag", "want"), [(1, None, 2), (2, None, 1), (2, 3, 3)])
def test_worker_threads_follow_cores_and_workers(mlp_registry: Registry, workers: int,
                                                 flag: int | None, want: int) -> None:
    """Pinned to two cores: 1 worker gets 2 threads, 2 workers 1 each, --threads wins."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2 or available_cores() < 2:
        pytest.skip("needs two cores (affinity and cgroup quota)")
    args = ["--workers", str(workers)] + (["--threads", str(flag)] if flag else [])
    with _pinned_serve(mlp_registry, set(allowed[:2]), *args) as url:
        headers = {"Authorization": f"Bearer {PREDICT_TOKEN}"}
        resp = requests.post(f"{url}/predict", json={"data": example_frame(3).to_json()},
                             headers=headers, timeout=10)
        assert resp.status_code == 200, resp.text
        per_worker = _worker_threads(url, workers)
    for values in per_worker.values():
        assert values["torch"] == want, per_worker
        assert values["openmp"] == want, per_worker  # torch's (and sklearn's) libgomp
        # OpenBLAS never starts more threads than the cores it sees
        assert values.get("blas", want) == min(want, 2), per_worker
        assert (values["cores"], values["processes"], values["threads"]) == (2, workers, want)


def test_serve_refuses_zero_threads(registry: Registry) -> None:
    out = subprocess.run([sys.executable, "-c", _LAUNCH, "serve", "--tracking-uri",
                          registry.uri, "--threads", "0"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    assert out.returncode != 0
    assert "--threads" in out.stderr, out.stderr
    assert "greater than or equal to 1" in out.stderr, out.stderr


# --- the bounded pool --------------------------------------------------------------------


def _columns_body(rows: int) -> bytes:
    frame = example_frame(rows)
    columns = {c: frame[c].tolist() for c in frame.columns if c != "time"}
    columns["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%S").tolist()
    return orjson.dumps(columns)


def _metric(url: str, name: str, labels: dict[str, str] | None = None) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and (labels is None or sample.labels == labels):
                return float(sample.value)
    return 0.0


@pytest.mark.slow
def test_a_huge_batch_does_not_stall_small_requests(registry: Registry) -> None:
    """While a huge batch is in the pool, /metrics and small predictions are answered."""
    srv = start_server(registry, max_body_bytes=256 * 1024 * 1024)
    headers = {"Authorization": f"Bearer {PREDICT_TOKEN}", "Content-Type": "application/json"}
    small = _columns_body(3)
    try:
        for rows in (200_000, 800_000):
            big = _columns_body(rows)
            done = threading.Event()
            big_status: list[int] = []

            def send_big(body: bytes = big, finished: threading.Event = done,
                         status: list[int] = big_status) -> None:
                resp = requests.post(f"{srv.url}/predict", data=body, headers=headers,
                                     timeout=300)
                status.append(resp.status_code)
                finished.set()

            sender = threading.Thread(target=send_big)
            sender.start()
            # the loop answers /metrics while the batch is queued or running in the pool
            while _metric(srv.url, "wxops_prediction_queue") < 1 and not done.is_set():
                time.sleep(0.005)
            answered_during = 0
            while not done.is_set():
                resp = requests.post(f"{srv.url}/predict", data=small, headers=headers,
                                     timeout=10)
                assert resp.status_code == 200, resp.text
                if not done.is_set():
                    answered_during += 1
                    if answered_during >= 3:
                        break
            sender.join()
            assert big_status == [200]
            if answered_during >= 3:
                assert _metric(srv.url, "wxops_predictions_total", {"where": "pool"}) >= 1
                return
        pytest.fail("the huge batch always finished before small requests were answered")
    finally:
        srv.stop()


@pytest.mark.slow
def test_full_queue_answers_503_with_retry_after(registry: Registry) -> None:
    """queue_limit 1, every prediction in the pool: a burst gets 503s, each counted."""
    srv = start_server(registry, inline_ms=0.0, queue_limit=1,
                       max_body_bytes=256 * 1024 * 1024)
    headers = {"Authorization": f"Bearer {PREDICT_TOKEN}", "Content-Type": "application/json"}
    body = _columns_body(100_000)
    try:
        statuses: list[requests.Response] = []
        for _ in range(5):
            barrier = threading.Barrier(6)

            def send(barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                statuses.append(requests.post(f"{srv.url}/predict", data=body,
                                              headers=headers, timeout=120))

            senders = [threading.Thread(target=send) for _ in range(6)]
            for t in senders:
                t.start()
            for t in senders:
                t.join()
            if any(r.status_code == 503 for r in statuses):
                break
        refused = [r for r in statuses if r.status_code == 503]
        assert refused, "six simultaneous batches never filled a queue of one"
        assert {r.status_code for r in statuses} <= {200, 503}
        for resp in refused:
            assert int(resp.headers["Retry-After"]) >= 1
            assert "queue limit" in resp.json()["error"]
        assert _metric(srv.url, "wxops_predictions_rejected_total") == len(refused)
        assert _metric(srv.url, "wxops_prediction_queue") == 0
    finally:
        srv.stop()
