"""wxops serve vs `mlflow models serve`, a user-style endpoint and LitServe, same model, same run.

Usage::

    pip install -e '.[bench]'        # LitServe, for its baseline (skipped without it)
    PYTHONPATH=src python benchmarks/bench_serve.py [--quick] [--project DIR]

Without ``--project`` a temporary project is built with the reference champion's
configuration (the PyTorch MLP ``mlp-small`` of the default config) registered as
``visibility`` and a ridge model as ``visibility-ridge``; with ``--project``, that
project's ``visibility@champion`` is served as the MLP. Every server gets the same request
bytes (MLflow's ``dataframe_split``, 1 row or 100 rows) on ``/invocations``:

* ``wxops``     ``wxops serve`` with everything on (bearer auth, validation, metrics,
                prediction log), 1 worker; ``wxops-2w`` the same with 2 workers;
                ``wxops-nolog`` 1 worker without the prediction log (what the log costs)
* ``mlflow``    ``mlflow models serve --env-manager local`` (MLflow's scoring server)
* ``bare``      what a user writes: FastAPI, orjson -> DataFrame -> ``pipeline.predict``
                on the model from ``mlflow.sklearn.load_model``, plain ``uvicorn.run``
* ``litserve``  LitServe with the same model and the same DataFrame -> predict
* ``floor``     wxops' own server stack (uvicorn settings, no-delay protocol) answering
                every request with a fixed list of as many numbers, without parsing it:
                the most any handler on this stack can do (informative, no goal)

Load: ``wrk -t1 -c16`` (apt-get install wrk) if installed, else a Python closed-loop
generator with 16 connections. Each test runs in rounds that alternate between the
servers, so a noisy neighbour slows them alike; ratios are taken per round and printed as
the median with the spread (min-max) over the rounds. Two conditions: quiet, and with a
bounded background CPU load (two busy processes for the condition's whole duration).
The load average before and during the run is printed: the machine may be shared.
``--quick`` runs only the MLP with shorter tests (~4 minutes); the full run ~10 minutes.
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
ROWS = {"1 row": 1, "100 rows": 100}


# --- baselines run by this file (--bare PORT, --litserve PORT) --------------------------------


def _user_model() -> Any:
    """The model as a user loads it: ``mlflow.sklearn.load_model``, nothing else."""
    import mlflow.sklearn

    mlflow.set_tracking_uri(os.environ["WXOPS_BENCH_URI"])
    return mlflow.sklearn.load_model(f"models:/{os.environ['WXOPS_BENCH_MODEL']}")


def _frame(split: dict[str, Any]) -> Any:
    import pandas as pd

    frame = pd.DataFrame(split["data"], columns=split["columns"])
    frame["time"] = pd.to_datetime(frame["time"])
    return frame


def make_bare_app() -> Any:
    """A user-style endpoint: orjson -> DataFrame -> pipeline.predict, default settings."""
    import orjson
    from fastapi import FastAPI

    model = _user_model()
    app = FastAPI()

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        frame = _frame(orjson.loads(await request.body())["dataframe_split"])
        return Response(orjson.dumps({"predictions": model.predict(frame).tolist()}),
                        media_type="application/json")

    @app.get("/ping")
    async def ping() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


def _run_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(make_bare_app(), host="127.0.0.1", port=port, log_level="warning")


def make_floor_app() -> Any:
    """A pure-ASGI app that reads the body and answers as many fixed numbers as it has
    rows (``],[`` separators + 1), without parsing: the server stack's own cost."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        rows = body.count(b"],[") + 1
        answer = b'{"predictions":[' + b",".join([b"12993.865147982062"] * rows) + b"]}"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    return app


def _run_floor(port: int) -> None:
    import uvicorn

    from wxops.serve.server import uvicorn_config

    config = uvicorn_config(make_floor_app())  # type: ignore[arg-type]
    config.host, config.port = "127.0.0.1", port
    uvicorn.Server(config).run()


try:  # the LitServe baseline (pip install -e '.[bench]'); its API must be picklable
    import litserve as _ls
except ImportError:  # pragma: no cover - optional
    _ls = None

if _ls is not None:

    class VisibilityAPI(_ls.LitAPI):  # type: ignore[misc]
        """The same DataFrame -> predict as the user-style endpoint, in LitServe."""

        def setup(self, device: str) -> None:
            self.model = _user_model()

        def decode_request(self, request):  # type: ignore[no-untyped-def]
            # no annotation: LitServe then parses the JSON body (an annotation would be
            # taken for the request model or, with Any, for a query parameter)
            return _frame(request["dataframe_split"])

        def predict(self, x: Any) -> Any:
            return self.model.predict(x)

        def encode_response(self, output: Any) -> Any:
            return {"predictions": output.tolist()}


def _run_litserve(port: int) -> None:
    import inspect

    assert _ls is not None, "pip install -e '.[bench]'"
    api_kwargs: dict[str, Any] = {}
    server_kwargs: dict[str, Any] = {"accelerator": "cpu", "workers_per_device": 1}
    if "api_path" in inspect.signature(_ls.LitAPI.__init__).parameters:
        api_kwargs["api_path"] = "/invocations"
    else:  # older LitServe: the path is the server's
        server_kwargs["api_path"] = "/invocations"
    server = _ls.LitServer(VisibilityAPI(**api_kwargs), **server_kwargs)
    run_kwargs: dict[str, Any] = {"host": "127.0.0.1", "port": port, "log_level": "warning"}
    if "generate_client_file" in inspect.signature(server.run).parameters:
        run_kwargs["generate_client_file"] = False
    server.run(**run_kwargs)


# --- servers -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(cmd: list[str], env: dict[str, str], port: int, ready: str) -> Iterator[str]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=tempfile.gettempdir())
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while not _get_ok(url + ready):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"{cmd[:5]} did not start:\n"
                                       f"{log.read().decode()[-3000:]}")
                time.sleep(0.3)
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


@contextlib.contextmanager
def _background_load(processes: int = 2) -> Iterator[None]:
    """``processes`` busy loops at normal priority for the duration of the block."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             start_new_session=True) for _ in range(processes)]
    try:
        time.sleep(1.0)
        yield
    finally:
        for proc in busy:
            proc.kill()
        for proc in busy:
            proc.wait()


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
    ordered = sorted(latencies) or [float("nan")]
    return {"rps": len(latencies) / (time.perf_counter() - started),
            "p50": ordered[len(ordered) // 2] * 1e3,
            "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
            "errors": float(errors)}


def _wrk(url: str, body: bytes, headers: dict[str, str], seconds: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\n')
        script.write(f"wrk.body = {json.dumps(body.decode())}\n")
        script.write('wrk.headers["Content-Type"] = "application/json"\n')
        for key, value in headers.items():
            script.write(f'wrk.headers["{key}"] = "{value}"\n')
    try:
        out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "--timeout", "10s",
                              "--latency", "-s", script.name, url + "/invocations"],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = float(bad.group(1)) if bad else 0.0
    if sock:
        errors += sum(float(g) for g in sock.groups())
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": ms("50"), "p99": ms("99"),
            "errors": errors}


def _load(url: str, body: bytes, headers: dict[str, str], seconds: int) -> dict[str, float]:
    if shutil.which("wrk"):
        return _wrk(url, body, headers, seconds)
    port = int(url.rsplit(":", 1)[1])
    return asyncio.run(_closed_loop(port, _request_bytes("/invocations", body, headers), 16,
                                    seconds))


# --- the benchmark -----------------------------------------------------------------------------


def _bodies() -> dict[str, bytes]:
    from wxops.config import DataConfig
    from wxops.data.sources import read_source

    names = ["t2m", "td2m", "rh", "pressure", "wind_speed", "wind_dir", "total_cloud",
             "opaque_cloud"]
    obs = read_source(DataConfig()).dropna(subset=names).head(100)
    rows = obs[["time", *names]].astype({n: float for n in names})
    rows["time"] = rows["time"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return {label: json.dumps({"dataframe_split": rows.head(n).to_dict(orient="split")}).encode()
            for label, n in ROWS.items()}


def _build_project(project: Path) -> str:
    """The reference champion's configuration (mlp-small) and a ridge model, registered."""
    from wxops.config import parse_config
    from wxops.pipeline import run_pipeline
    from wxops.startup import configure_process

    configure_process()
    uri = f"sqlite:///{project / 'mlflow.db'}"
    reference = parse_config({})  # the default config: the reference pipeline
    mlp = next(m for m in reference.models if m.name == "mlp-small")
    for name, model in (("visibility", mlp.model_dump(mode="json")),
                        ("visibility-ridge", {"name": "ridge", "type": "linear"})):
        cfg = parse_config({"models": [model],
                            "tracking": {"uri": uri, "registered_model": name}})
        run_pipeline(cfg, project_dir=project)
    return uri


def _servers(model: str, uri: str, tmp: Path, env: dict[str, str], litserve: bool
             ) -> dict[str, tuple[list[str], dict[str, str], str, dict[str, str]]]:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    me = str(Path(__file__).resolve())
    wxops = [sys.executable, "-m", "wxops.cli", "serve", "--tracking-uri", uri, "--model",
             f"{model}@champion", "--poll", "0", "--port", "{port}"]
    menv = {**env, "WXOPS_BENCH_MODEL": f"{model}@champion"}
    servers = {
        "wxops": ([*wxops, "--prediction-log", str(tmp / f"{model}-1.db")], menv, "/ready",
                  auth),
        "wxops-2w": ([*wxops, "--workers", "2", "--prediction-log", str(tmp / f"{model}-2.db")],
                     menv, "/ready", auth),
        "wxops-nolog": (wxops, menv, "/ready", auth),
        "mlflow": ([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                    f"models:/{model}@champion", "--env-manager", "local", "--host",
                    "127.0.0.1", "--port", "{port}", "--workers", "1"], menv, "/ping", {}),
        "bare": ([sys.executable, me, "--bare", "{port}"], menv, "/ping", {}),
        "floor": ([sys.executable, me, "--floor", "{port}"], menv, "/ping", {}),
    }
    if litserve:
        servers["litserve"] = ([sys.executable, me, "--litserve", "{port}"], menv, "/health",
                               {})
    return servers


def _measure(servers: dict[str, Any], urls: dict[str, str], bodies: dict[str, bytes],
             rounds: int, seconds: int) -> dict[str, dict[str, list[dict[str, float]]]]:
    """{server: {test: [one result per round]}}, rounds alternating between servers."""
    results: dict[str, dict[str, list[dict[str, float]]]] = {n: {} for n in urls}
    for i in range(rounds):
        for label, body in bodies.items():
            for name, url in urls.items():
                results[name].setdefault(label, []).append(
                    _load(url, body, servers[name][3], seconds))
        print(f"    round {i + 1}/{rounds} (load average {os.getloadavg()[0]:.1f})",
              file=sys.stderr, flush=True)
    return results


def _bench_model(model: str, uri: str, tmp: Path, env: dict[str, str], bodies: dict[str, bytes],
                 args: argparse.Namespace, litserve: bool) -> dict[str, Any]:
    servers = _servers(model, uri, tmp, env, litserve)
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        urls = {}
        for name, (cmd, server_env, ready, _) in servers.items():
            port = _free_port()
            print(f"  starting {name} ({model})", file=sys.stderr, flush=True)
            urls[name] = stack.enter_context(_server(
                [c.replace("{port}", str(port)) for c in cmd], server_env, port, ready))
        time.sleep(2.0)  # the second wxops worker loads its model too
        for name, url in urls.items():  # warm-up
            _load(url, bodies["100 rows"], servers[name][3], 1)
        for condition in ("quiet", "loaded"):
            print(f"  {model}: {condition}", file=sys.stderr, flush=True)
            with _background_load() if condition == "loaded" else contextlib.nullcontext():
                load = os.getloadavg()[0]
                out[condition] = _measure(servers, urls, bodies, args.rounds, args.seconds)
                out[f"{condition} load"] = max(load, os.getloadavg()[0])
    return out


def _ratio(a: list[dict[str, float]], b: list[dict[str, float]], key: str = "rps"
           ) -> tuple[float, float, float]:
    """Median, min and max over rounds of a[round][key] / b[round][key]."""
    values = [x[key] / y[key] if y[key] else float("inf") for x, y in zip(a, b, strict=True)]
    return statistics.median(values), min(values), max(values)


def _med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _report(model: str, res: dict[str, Any], goals: bool) -> list[tuple[str, float, float]]:
    print(f"\n== {model}: requests/s, p50 and p99 (ms), median of rounds; errors summed")
    print(f"{'condition':<8} {'server':<11} {'test':<9} {'req/s':>8} {'rows/s':>9} {'p50':>8} "
          f"{'p99':>8} {'err':>5}")
    for condition in ("quiet", "loaded"):
        for name, tests in res[condition].items():
            for test, runs in tests.items():
                rps = _med(runs, "rps")
                print(f"{condition:<8} {name:<11} {test:<9} {rps:>8.0f} {rps * ROWS[test]:>9.0f} "
                      f"{_med(runs, 'p50'):>8.2f} {_med(runs, 'p99'):>8.2f} "
                      f"{int(sum(r['errors'] for r in runs)):>5}")
        print(f"  (load average during {condition}: {res[condition + ' load']:.1f})")
    q, busy = res["quiet"], res["loaded"]
    rows: list[tuple[str, tuple[float, float, float], str, float]] = []
    for test in ROWS:
        rows.append((f"2 workers / 1 worker, {test}", _ratio(q["wxops-2w"][test],
                                                              q["wxops"][test]), ">=", 1.6))
    rows.append(("loaded: vs mlflow, 100 rows", _ratio(busy["wxops"]["100 rows"],
                                                       busy["mlflow"]["100 rows"]), ">=", 5))
    rows.append(("loaded p99 / quiet p99, 100 rows", _ratio(busy["wxops"]["100 rows"],
                                                           q["wxops"]["100 rows"], "p99"),
                 "<=", 10))
    for test in ROWS:
        rows.append((f"quiet: vs mlflow, {test}", _ratio(q["wxops"][test], q["mlflow"][test]),
                     ">=", 25))
    for test in ROWS:
        rows.append((f"quiet: vs bare, {test}", _ratio(q["wxops"][test], q["bare"][test]),
                     ">=", 10))
    if "litserve" in q:
        for test in ROWS:
            rows.append((f"quiet: vs litserve, {test}",
                         _ratio(q["wxops"][test], q["litserve"][test]), ">=", 3))
    for test in ROWS:
        rows.append((f"loaded: 2 workers / 1 worker, {test}",
                     _ratio(busy["wxops-2w"][test], busy["wxops"][test]), "", 0))
    # informative: the prediction log's share of one worker's time (its formatting holds
    # the GIL), and the comparison with the bare endpoint (which logs nothing) without it
    for label, a, b in (("log on / log off", "wxops", "wxops-nolog"),
                        ("log off vs bare", "wxops-nolog", "bare")):
        for test in ROWS:
            rows.append((f"quiet: {label}, {test}", _ratio(q[a][test], q[b][test]), "", 0))
    # informative: each server's time per request at one core, and what the goal of 10x the
    # bare endpoint leaves one wxops worker (the floor: the server stack's own share)
    print(f"\n{model}: microseconds per request (1 / median req/s; one worker uses one core)")
    for test in ROWS:
        per = {n: 1e6 / _med(q[n][test], "rps") for n in ("wxops", "wxops-nolog", "bare", "floor")
               if n in q}
        cells = ", ".join(f"{n} {us:.0f}" for n, us in per.items())
        print(f"  {test:<9} {cells}; 10x bare needs <= {per['bare'] / 10:.0f}")
    print(f"\n{model}: ratios (wxops serve, 1 worker unless said), median [min-max] over rounds")
    summary = []
    for label, (med, lo, hi), op, target in rows:
        verdict = ""
        if goals and op:
            met = med >= target if op == ">=" else med <= target
            verdict = f"goal {op} {target:g}: {'met' if met else 'MISSED'}"
        print(f"  {label:<36} {med:>8.2f}x [{lo:.2f}-{hi:.2f}]  {verdict}")
        summary.append((label, med, lo))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--project", type=Path,
                        help="project with mlflow.db whose visibility@champion is served")
    parser.add_argument("--quick", action="store_true", help="MLP only, shorter tests")
    parser.add_argument("--seconds", type=int, help="per load test and round (whole seconds)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--litserve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        _run_bare(args.bare)
        return
    if args.litserve:
        _run_litserve(args.litserve)
        return
    if args.floor:
        _run_floor(args.floor)
        return
    args.seconds = args.seconds or (1 if args.quick else 2)
    sys.path.insert(0, str(ROOT / "src"))
    litserve = _ls is not None
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="wxops-bench-"))
    try:
        if args.project:
            uri = f"sqlite:///{args.project.resolve() / 'mlflow.db'}"
            models = ["visibility"]
        else:
            print("building the project (mlp-small and ridge) ...", file=sys.stderr, flush=True)
            uri = _build_project(tmp)
            models = ["visibility"] if args.quick else ["visibility", "visibility-ridge"]
        bodies = _bodies()
        env = {**os.environ,
               "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'benchmarks'}",
               "MLFLOW_TRACKING_URI": uri, "WXOPS_BENCH_URI": uri,
               "WXOPS_SERVE_TOKENS": f"predict,admin:{TOKEN}", "NO_PROXY": "127.0.0.1",
               # mlflow models serve execs `uvicorn` from PATH: use this interpreter's
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        results = {m: _bench_model(m, uri, tmp, env, bodies, args, litserve) for m in models}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    generator = "wrk -t1 -c16" if shutil.which("wrk") else "python closed loop, 16 connections"
    print(f"\nLoad: {generator}, {args.seconds:g} s per test, {args.rounds} rounds; "
          f"background load: 2 busy processes; {os.cpu_count()} cores; load average "
          f"{load_before[0]:.1f} before the run")
    if not litserve:
        print("LitServe not installed (pip install -e '.[bench]'): its baseline is skipped")
    for model, res in results.items():
        _report(f"{model} ({'MLP champion' if model == 'visibility' else 'ridge'})", res,
                goals=model == "visibility")
    print(f"\nwall time {time.perf_counter() - t0:.0f} s; load average now "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
