"""Running the service: one uvicorn worker, or several behind one port, never stalling.

Why not ``uvicorn --workers N``: there, responses are written in two small segments
(headers, then body) on sockets without ``TCP_NODELAY``; Nagle's algorithm holds the
second segment until the client's delayed ACK (~40 ms on Linux) arrives, so every
request at one connection takes ~40 ms. Here every accepted connection gets
``TCP_NODELAY`` (:class:`NoDelayHttpToolsProtocol`), and each worker process binds its
own listening socket on the same port with ``SO_REUSEPORT``, so the kernel spreads the
connections and no worker shares an accept queue. A worker loads its model before it
starts listening, so it never takes a connection it would answer with 503. The head and
body of a response also leave in one ``send`` (:class:`CoalescingTransport`): one
system call and one TCP segment per answer instead of two, for the client too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import multiprocessing as mp
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from wxops.errors import ServeError, TrackingError
from wxops.serve.settings import TOKENS_ENV, ServeSettings

log = logging.getLogger("wxops.serve")

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol

    _HTTP_IMPL = "httptools"
except ImportError:  # pragma: no cover - httptools is a dependency
    from uvicorn.protocols.http.h11_impl import H11Protocol as _BaseProtocol  # type: ignore[assignment]

    _HTTP_IMPL = "h11"


class CoalescingTransport:
    """A connection's transport whose writes of one event-loop turn leave as one.

    uvicorn writes a response's status line and headers, then its body, with two
    ``transport.write`` calls: two ``send`` system calls and, with ``TCP_NODELAY``, two
    TCP segments the client reads one by one. Here the writes of a turn are joined and
    handed to the real transport in a callback right after it (before the loop polls
    again), so a small answer leaves in one segment. ``close`` sends what is held
    first; everything else is the real transport's.
    """

    def __init__(self, transport: Any, loop: Any) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)

    def _flush(self) -> None:
        held, self._held = self._held, []
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class NoDelayHttpToolsProtocol(_BaseProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol with ``TCP_NODELAY`` on every connection (no 40 ms stall)
    and a response's head and body written together (:class:`CoalescingTransport`)."""

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # duck-typed: every method but write/close is the real transport's
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


def configure_serving_process(workers: int = 1, threads: int | None = None) -> None:
    """Process-wide settings of a serving process, applied once at its start.

    The thread budget comes first, before a model brings PyTorch and its OpenMP pool:
    ``workers`` processes x their threads stay within the cores this process may use, so
    two workers on two cores do not run four spinning OpenMP threads (``threads``
    overrides, from ``--threads``). Inputs are validated as finite before they reach
    scikit-learn, so its per-call finiteness check is skipped; the compiled predictor
    hands estimators plain arrays, so the feature-name warning they would raise on every
    call is silenced.
    """
    from wxops.startup import apply_thread_budget, configure_process, thread_budget

    apply_thread_budget(thread_budget(workers, threads))  # before sklearn loads its OpenMP
    import prometheus_client
    import sklearn

    configure_process()
    prometheus_client.disable_created_metrics()
    sklearn.set_config(assume_finite=True)
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def check_settings(settings: ServeSettings) -> None:
    """Refuse unsafe combinations before anything starts; warn loudly when auth is off."""
    if not settings.auth:
        if not _is_loopback(settings.host):
            raise ServeError(f"--no-auth is for local use only; it cannot listen on "
                             f"{settings.host}. Configure tokens ({TOKENS_ENV} or --token-file) "
                             "or bind 127.0.0.1")
        banner = "!" * 72
        print(f"{banner}\n!! wxops serve: AUTHENTICATION IS OFF. Anyone who can reach "
              f"{settings.host}:{settings.port}\n!! can call every endpoint, /admin/reload "
              f"included. For local use only.\n{banner}", file=sys.stderr, flush=True)


def build_app(settings: ServeSettings, *, on_admin_reload: Any = None) -> FastAPI:
    """Connect to the registry, read tokens and build the app (the model loads at start-up)."""
    from wxops import tracking
    from wxops.serve.app import create_app
    from wxops.serve.auth import load_tokens
    from wxops.serve.model import ModelHolder, parse_model_ref

    ref = parse_model_ref(settings.model)
    tokens = load_tokens(TOKENS_ENV, settings.token_file) if settings.auth else None
    tracking.connect(settings.tracking_uri)
    return create_app(settings, ModelHolder(ref), tokens=tokens, on_admin_reload=on_admin_reload)


def bind_socket(host: str, port: int, *, reuse_port: bool, listen: bool = True) -> socket.socket:
    """A listening TCP socket with ``TCP_NODELAY`` (inherited by accepted connections).

    With ``listen=False`` the socket only holds the port: the supervisor reserves it this
    way, since a listening socket that never accepts would get its share of connections.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another "
                         "--port or stop what uses it") from exc
    if listen:
        sock.listen(2048)
    return sock


def uvicorn_config(app: FastAPI) -> uvicorn.Config:
    """uvicorn settings: no-delay protocol, uvloop if present, no per-request access log."""
    loop = "uvloop" if _has("uvloop") else "asyncio"
    return uvicorn.Config(app, http=NoDelayHttpToolsProtocol, loop=loop, lifespan="on",
                          access_log=False, log_level="warning", timeout_graceful_shutdown=10,
                          server_header=False)


@dataclass
class RunningServer:
    """A server running in a thread of this process (tests, notebooks, benchmarks)."""

    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def run_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start ``app`` on ``host:port`` (0: a free port) in a daemon thread; wait for it."""
    sock = bind_socket(host, port, reuse_port=False)
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"wxops-serve-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServeError(f"server on {host}:{bound_port} did not start")
        time.sleep(0.02)
    return RunningServer(server, thread, host, bound_port)


#: MLflow error codes that mean the reference names nothing (as opposed to an outage).
_NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


def check_model_ref(text: str, *, timeout: float = 20.0) -> None:
    """Refuse at start a model reference the registry cannot resolve.

    A registry that answers "no such model, alias or version" makes ``wxops serve`` exit
    with the aliases there are; one that does not answer within ``timeout`` (an outage)
    lets the service start and keep retrying, ``/ready`` saying why it is not ready.

    Raises:
        ServeError: the reference names nothing in the registry.
    """
    from mlflow.exceptions import MlflowException

    from wxops import tracking
    from wxops.serve.model import parse_model_ref

    ref = parse_model_ref(text)
    outcome: dict[str, BaseException] = {}

    def probe() -> None:
        try:
            tracking.resolve_model_version(ref.name, alias=ref.alias, version=ref.version)
        except TrackingError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=probe, name="wxops-ref-check", daemon=True)
    thread.start()
    thread.join(timeout)
    exc = outcome.get("error")
    if exc is None:
        return
    cause = exc.__cause__
    if isinstance(cause, MlflowException) and cause.error_code not in _NOT_FOUND:
        log.warning("cannot resolve %s yet (will retry): %s", text, exc)
        return
    aliases = tracking.alias_map(ref.name)
    known = ", ".join(f"{a} -> version {v}" for a, v in sorted(aliases.items())) or "none"
    raise ServeError(f"cannot serve {text}: {exc} (aliases of '{ref.name}': {known}); "
                     "give --model NAME@ALIAS or NAME/VERSION") from exc


def serve(settings: ServeSettings) -> None:
    """Serve until interrupted: in this process (1 worker) or under a supervisor."""
    check_settings(settings)
    if settings.workers == 1:
        configure_serving_process(1, settings.threads)
        from wxops.serve.model import freeze_heap_at_swaps

        freeze_heap_at_swaps()  # in a serving process only (not in tests that build apps)
        app = build_app(settings)  # fail fast on tokens/model reference before binding
        check_model_ref(settings.model)
        sock = bind_socket(settings.host, settings.port, reuse_port=False)
        log.info("wxops serve: %s on http://%s:%d", settings.model, settings.host,
                 sock.getsockname()[1])
        uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])
        return
    _supervise(settings)


def _supervise(settings: ServeSettings) -> None:
    """Start ``workers`` processes on one port (SO_REUSEPORT); restart any that dies."""
    # Validate tokens and the model reference here, so a mistake fails once, clearly.
    from wxops.serve.auth import load_tokens
    from wxops.serve.model import parse_model_ref

    parse_model_ref(settings.model)
    if settings.auth:
        load_tokens(TOKENS_ENV, settings.token_file)
    from wxops import tracking

    tracking.connect(settings.tracking_uri)
    check_model_ref(settings.model)
    reserve = bind_socket(settings.host, settings.port, reuse_port=True, listen=False)
    port = reserve.getsockname()[1]
    settings = settings.model_copy(update={"port": port})
    metrics_dir = tempfile.mkdtemp(prefix="wxops-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    ctx = mp.get_context("spawn")
    generation = ctx.Value("i", 0)
    procs: list[Any] = []
    stopping = threading.Event()

    def start_worker(index: int) -> Any:
        proc = ctx.Process(target=_worker_main, args=(settings, generation),
                           name=f"wxops-serve-worker-{index}", daemon=False)
        proc.start()
        return proc

    def stop(*_: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"wxops serve: {settings.model} on http://{settings.host}:{port} "
          f"({settings.workers} workers)", file=sys.stderr, flush=True)
    try:
        procs = [start_worker(i) for i in range(settings.workers)]
        while not stopping.wait(0.5):
            for i, proc in enumerate(procs):
                if not proc.is_alive():
                    log.error("worker %d exited (code %s); restarting it", i, proc.exitcode)
                    procs[i] = start_worker(i)
    finally:
        for proc in procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.join(timeout=15)
        reserve.close()
        import shutil

        shutil.rmtree(metrics_dir, ignore_errors=True)


def _worker_main(settings: ServeSettings, generation: Any) -> None:
    """One worker: own SO_REUSEPORT socket, own model; follows reload broadcasts."""
    configure_serving_process(settings.workers, settings.threads)  # first: before numpy
    from wxops.serve.model import freeze_heap_at_swaps

    freeze_heap_at_swaps()

    def broadcast() -> None:
        with generation.get_lock():
            generation.value += 1

    app = build_app(settings, on_admin_reload=broadcast)
    holder = app.state.holder
    seen = generation.value
    # Load before listening: with SO_REUSEPORT the kernel routes connections to every
    # listening worker, so one that listened while still loading would answer 503s
    # while its siblings are ready (also after a restart).
    try:
        holder.reload()
    except (TrackingError, ServeError) as exc:
        log.error("worker could not load %s (it will answer 503 until it can): %s",
                  settings.model, exc)

    def follow() -> None:
        nonlocal seen
        while True:
            time.sleep(0.2)
            if generation.value != seen:
                seen = generation.value
                try:
                    holder.reload()
                except (TrackingError, ServeError) as exc:
                    log.warning("reload broadcast: keeping the current model: %s", exc)

    threading.Thread(target=follow, name="wxops-reload-broadcast", daemon=True).start()
    sock = bind_socket(settings.host, settings.port, reuse_port=True)
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
