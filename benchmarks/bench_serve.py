"""wxops serve vs `mlflow models serve` vs a bare FastAPI endpoint, same model, same run.

Usage::

    PYTHONPATH=src python benchmarks/bench_serve.py [--project DIR] [--seconds 5]

Without ``--project`` a temporary project is built with a ridge-only pipeline (~10 s);
with it, that project's ``visibility@champion`` is served. Every server gets the same
request bytes (MLflow's ``dataframe_split``, one row or 100 rows) on ``/invocations``:

* ``mlflow``    ``mlflow models serve --env-manager local`` (MLflow's scoring server)
* ``wxops``     ``wxops serve`` with everything on: bearer auth, validation, metrics,
                prediction log (SQLite)
* ``bare``      a FastAPI endpoint doing json -> numpy -> predict (wxops' compiled
                predictor) and nothing else, under the same uvicorn settings
* ``bare-df``   the same endpoint calling the model's own ``predict`` on a DataFrame
                (shows how much of the gain is the compiled predictor)

Peak throughput: ``wrk`` (16 connections) if installed, else a Python closed-loop
generator. Tail latency: an open-loop Python generator at a fixed rate (half of MLflow's
single-row peak, so every server can keep up), latency counted from the scheduled send
time. Delayed-ACK check: p50 at one connection, 1 vs 2 workers, for ``wxops serve`` and
for ``uvicorn --workers 2`` on the bare app. All servers run side by side and the load
tests alternate between them in rounds (medians reported), so a noisy neighbour slows
every server alike. Total run time is about 2-3 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Module level: FastAPI resolves the handler's (string) annotations in these globals.
from fastapi import Request
from starlette.responses import Response

TOKEN = "bench-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]


# --- the bare endpoint (also run by this file: --bare) --------------------------------------


def make_bare_app() -> Any:
    """FastAPI app: json -> numpy -> predict, nothing else. Configured by environment."""
    import numpy as np
    import orjson
    from fastapi import FastAPI

    from wxops import tracking
    from wxops.serve.fastpath import build_predictor, to_frame
    from wxops.serve.payload import Batch, InputSchema
    from wxops.serve.server import configure_serving_process

    configure_serving_process()
    tracking.connect(os.environ["WXOPS_BENCH_URI"])
    name, _, alias = os.environ["WXOPS_BENCH_MODEL"].partition("@")
    servable = tracking.load_servable_model(name, tracking.resolve_model_version(name,
                                                                                 alias=alias))
    schema = InputSchema.from_signature(servable.inputs)
    use_frame = os.environ.get("WXOPS_BENCH_PATH") == "dataframe"
    predict = build_predictor(servable.model, schema).fn
    model = servable.model
    app = FastAPI()

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        split = orjson.loads(await request.body())["dataframe_split"]
        cols = dict(zip(split["columns"], zip(*split["data"], strict=True), strict=True))
        columns = {c.name: np.array(cols[c.name], dtype="datetime64[ns]" if c.type == "datetime"
                                    else np.float64) for c in schema.columns}
        batch = Batch(columns, len(split["data"]))
        result = (np.asarray(model.predict(to_frame(batch, schema)), dtype=np.float64)
                  if use_frame else predict(batch))
        return Response(orjson.dumps({"predictions": result}, option=orjson.OPT_SERIALIZE_NUMPY),
                        media_type="application/json")

    @app.get("/ping")
    async def ping() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


def _run_bare(port: int) -> None:
    import uvicorn

    from wxops.serve.server import bind_socket, uvicorn_config

    sock = bind_socket("127.0.0.1", port, reuse_port=False)
    uvicorn.Server(uvicorn_config(make_bare_app())).run(sockets=[sock])


# --- servers -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(cmd: list[str], env: dict[str, str], port: int, ready: str) -> Iterator[str]:
    with tempfile.TemporaryFile() as log:
        yield from _run_server(cmd, env, port, ready, log)


def _run_server(cmd: list[str], env: dict[str, str], port: int, ready: str,
                log: Any) -> Iterator[str]:
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _get_ok(url + ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"{cmd[:4]} did not start:\n{log.read().decode()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _get_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


# --- load generators -------------------------------------------------------------------------


def _request_bytes(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    if match is None:
        raise RuntimeError("benchmark client needs Content-Length responses")
    await reader.readexactly(int(match.group(1)))
    return status


async def _closed_loop(port: int, request: bytes, connections: int, seconds: float
                       ) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < end:
            start = time.perf_counter()
            if await _roundtrip(reader, writer, request) != 200:
                errors += 1
            latencies.append(time.perf_counter() - start)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return _summary(latencies, time.perf_counter() - started, errors)


async def _open_loop(port: int, request: bytes, rate: float, seconds: float) -> dict[str, float]:
    """Fixed arrival rate; latency from the scheduled time (no coordinated omission)."""
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        conn = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
        if await _roundtrip(*conn, request) != 200:
            errors += 1
        latencies.append(time.perf_counter() - scheduled)
        idle.append(conn)

    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return _summary(latencies, seconds, errors)


def _summary(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"rps": len(ordered) / elapsed, "p50": ordered[len(ordered) // 2] * 1e3,
            "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
            "errors": float(errors)}


def _wrk(url: str, body: bytes, headers: dict[str, str], seconds: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\n')
        script.write(f"wrk.body = {json.dumps(body.decode())}\n")
        script.write('wrk.headers["Content-Type"] = "application/json"\n')
        for key, value in headers.items():
            script.write(f'wrk.headers["{key}"] = "{value}"\n')
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds:g}s", "--latency", "-s",
                          script.name, url + "/invocations"], capture_output=True, text=True,
                         check=True).stdout
    os.unlink(script.name)

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_errors = re.search(r"Socket errors: .*", out)
    errors = float(bad.group(1)) if bad else 0.0
    if sock_errors and "timeout 0" not in sock_errors.group(0):
        errors += 1
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": ms("50"), "p99": ms("99"),
            "errors": errors}


def _peak(url: str, body: bytes, headers: dict[str, str], seconds: float) -> dict[str, float]:
    if shutil.which("wrk"):
        return _wrk(url, body, headers, seconds)
    port = int(url.rsplit(":", 1)[1])
    return asyncio.run(_closed_loop(port, _request_bytes("/invocations", body, headers), 16,
                                    seconds))


def _one_connection_p50(url: str, body: bytes, headers: dict[str, str], n: int = 300) -> float:
    port = int(url.rsplit(":", 1)[1])

    async def run() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = _request_bytes("/invocations", body, headers)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            await _roundtrip(reader, writer, request)
            times.append(time.perf_counter() - start)
        writer.close()
        return statistics.median(times[min(20, n // 2):]) * 1e3

    return asyncio.run(run())


# --- the benchmark -----------------------------------------------------------------------------


def _bodies(project: Path, uri: str) -> dict[str, bytes]:
    sys.path.insert(0, str(ROOT / "src"))
    from wxops.config import DataConfig
    from wxops.data.sources import read_source

    names = ["t2m", "td2m", "rh", "pressure", "wind_speed", "wind_dir", "total_cloud",
             "opaque_cloud"]
    obs = read_source(DataConfig()).dropna(subset=names).head(100)
    rows = obs[["time", *names]].astype({n: float for n in names})
    rows["time"] = rows["time"].dt.strftime("%Y-%m-%dT%H:%M:%S")

    def split(n: int) -> bytes:
        return json.dumps({"dataframe_split": rows.head(n).to_dict(orient="split")}).encode()

    return {"1 row": split(1), "100 rows": split(100)}


def _build_project(project: Path) -> str:
    from wxops.config import parse_config
    from wxops.pipeline import run_pipeline
    from wxops.startup import configure_process

    configure_process()
    uri = f"sqlite:///{project / 'mlflow.db'}"
    cfg = parse_config({"models": [{"name": "ridge", "type": "linear"}],
                        "tracking": {"uri": uri}})
    run_pipeline(cfg, project_dir=project)
    return uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, help="project with mlflow.db (default: build one)")
    parser.add_argument("--seconds", type=float, default=2.0, help="per load test and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        _run_bare(args.bare)
        return
    sys.path.insert(0, str(ROOT / "src"))
    tmp = Path(tempfile.mkdtemp(prefix="wxops-bench-"))
    project = args.project.resolve() if args.project else tmp
    t0 = time.perf_counter()
    uri = f"sqlite:///{project / 'mlflow.db'}" if args.project else _build_project(project)
    bodies = _bodies(project, uri)
    model = "visibility@champion"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'benchmarks'}",
           "MLFLOW_TRACKING_URI": uri, "WXOPS_BENCH_URI": uri, "WXOPS_BENCH_MODEL": model,
           "WXOPS_SERVE_TOKENS": f"predict,admin:{TOKEN}", "NO_PROXY": "127.0.0.1",
           # mlflow models serve execs `uvicorn` from PATH: use this interpreter's
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    wxops_cmd = [sys.executable, "-c", "import typer; from wxops.serve.cli import register; "
                 "app = typer.Typer(); register(app); app.command('x')(lambda: None); app()",
                 "serve", "--tracking-uri", uri, "--model", model, "--poll", "0",
                 "--prediction-log", str(tmp / "predictions.db")]
    servers: dict[str, tuple[list[str], dict[str, str], str, dict[str, str]]] = {
        "mlflow": ([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{model}",
                    "--env-manager", "local", "--host", "127.0.0.1", "--port", "{port}"],
                   env, "/ping", {}),
        "wxops": ([*wxops_cmd, "--port", "{port}"], env, "/health", auth),
        "bare": ([sys.executable, str(Path(__file__).resolve()), "--bare", "{port}"], env,
                 "/ping", {}),
        "bare-df": ([sys.executable, str(Path(__file__).resolve()), "--bare", "{port}"],
                    {**env, "WXOPS_BENCH_PATH": "dataframe"}, "/ping", {}),
    }
    # All servers up at once; rounds alternate between them so that load from other
    # processes on a shared machine hits every server alike; medians over the rounds.
    rounds: dict[str, dict[str, list[dict[str, float]]]] = {n: {} for n in servers}
    with contextlib.ExitStack() as stack:
        urls = {}
        for name, (cmd, server_env, ready, _) in servers.items():
            port = _free_port()
            urls[name] = stack.enter_context(_server(
                [c.replace("{port}", str(port)) for c in cmd], server_env, port, ready))
        while not _get_ok(urls["wxops"] + "/ready"):
            time.sleep(0.1)
        for name, url in urls.items():
            _one_connection_p50(url, bodies["1 row"], servers[name][3], n=50)  # warm-up
        for i in range(args.rounds):
            for name, url in urls.items():
                for label, body in bodies.items():
                    rounds[name].setdefault(label, []).append(
                        _peak(url, body, servers[name][3], args.seconds))
            print(f"  round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        rate = max(10.0, 0.5 * statistics.median(r["rps"] for r in rounds["mlflow"]["1 row"]))
        for name, url in urls.items():
            port = int(url.rsplit(":", 1)[1])
            rounds[name]["fixed rate"] = [asyncio.run(_open_loop(
                port, _request_bytes("/invocations", bodies["1 row"], servers[name][3]), rate,
                2 * args.seconds))]
    results = {name: {label: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                      for label, runs in tests.items()} for name, tests in rounds.items()}
    for name in results:
        for label, runs in rounds[name].items():
            results[name][label]["errors"] = sum(r["errors"] for r in runs)

    # delayed-ACK check: one connection, 1 vs 2 workers
    p50: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        single: dict[str, str] = {}
        for label, extra in (("wxops 1 worker", []), ("wxops 2 workers", ["--workers", "2"])):
            port = _free_port()
            single[label] = stack.enter_context(
                _server([*wxops_cmd, "--port", str(port), *extra], env, port, "/ready"))
        time.sleep(2.0)  # let the second worker load its model too
        samples: dict[str, list[float]] = {label: [] for label in single}
        for _ in range(2 * args.rounds):  # alternate, as above
            for label, url in single.items():
                samples[label].append(_one_connection_p50(url, bodies["1 row"], auth, n=150))
        p50 = {label: statistics.median(values) for label, values in samples.items()}
    port = _free_port()
    uvicorn_cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench_serve:make_bare_app",
                   "--app-dir", str(ROOT / "benchmarks"), "--port", str(port), "--workers", "2",
                   "--no-access-log", "--log-level", "warning"]
    with _server(uvicorn_cmd, env, port, "/ping") as url:
        time.sleep(1.0)
        p50["bare, uvicorn --workers 2"] = _one_connection_p50(url, bodies["1 row"], {})

    _report(results, rate, p50, time.perf_counter() - t0)
    shutil.rmtree(tmp, ignore_errors=True)


def _report(results: dict[str, dict[str, dict[str, float]]], rate: float,
            p50: dict[str, float], wall: float) -> None:
    generator = "wrk -t2 -c16" if shutil.which("wrk") else "python closed loop, 16 connections"
    print(f"\nPeak throughput ({generator}); tail latency at a fixed {rate:.0f} req/s, 1 row")
    print(f"{'server':<9} {'test':<11} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6}")
    for name, tests in results.items():
        for test, r in tests.items():
            rows = r["rps"] * (100 if test == "100 rows" else 1)
            print(f"{name:<9} {test:<11} {r['rps']:>9.0f} {rows:>10.0f} {r['p50']:>8.2f} "
                  f"{r['p99']:>8.2f} {int(r['errors']):>6}")
    w, m, b = results["wxops"], results["mlflow"], results["bare"]
    checks: list[tuple[str, float, str, float]] = [
        ("throughput vs mlflow, 1 row", w["1 row"]["rps"] / m["1 row"]["rps"], ">=", 10),
        ("rows/s vs mlflow, 100 rows", w["100 rows"]["rps"] / m["100 rows"]["rps"], ">=", 5),
        ("p99 vs mlflow, fixed rate", w["fixed rate"]["p99"] / m["fixed rate"]["p99"], "<=", 0.2),
        ("p99 vs mlflow, peak 1 row", w["1 row"]["p99"] / m["1 row"]["p99"], "<=", 0.2),
        ("throughput vs bare, 1 row", w["1 row"]["rps"] / b["1 row"]["rps"], ">=", 0.7),
        ("throughput vs bare, 100 rows", w["100 rows"]["rps"] / b["100 rows"]["rps"], ">=", 0.7),
    ]
    print("\nRatios (wxops serve / baseline)")
    for label, value, op, target in checks:
        met = value >= target if op == ">=" else value <= target
        print(f"  {label:<32} {value:>7.2f}x   target {op} {target:g}"
              f"{'  ok' if met else '  MISSED'}")
    info = b["1 row"]["rps"] / results["bare-df"]["1 row"]["rps"]
    print(f"  {'(bare numpy / bare-df, 1 row)':<32} {info:>7.2f}x   the compiled predictor's share")
    print("\np50 at one connection (delayed-ACK check)")
    for label, value in p50.items():
        print(f"  {label:<28} {value:>7.2f} ms")
    ratio = p50["wxops 2 workers"] / p50["wxops 1 worker"]
    print(f"  2 workers / 1 worker          {ratio:>7.2f}x   target <= 1.2"
          f"{'  ok' if ratio <= 1.2 else '  MISSED'}")
    print(f"\nwall time {wall:.0f} s")


if __name__ == "__main__":
    main()
