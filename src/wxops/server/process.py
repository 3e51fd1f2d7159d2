"""Start, watch and stop MLflow's own tracking server as a background service.

wxops does not reimplement a server: it runs ``mlflow server`` with a PostgreSQL
backend, proxied artifacts and MLflow's basic-auth app, and keeps what it needs to
manage that process (pid file, log, auth ini, admin password) in one state folder.
The admin password is generated into a 0600 file and never printed or logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from wxops.errors import MissingExtraError, ServerError

Permission = Literal["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"]
PERMISSIONS: tuple[str, ...] = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")
ADMIN_USER = "admin"
DEFAULT_BACKEND = "postgresql://postgres@127.0.0.1:5432/wxops"


def default_state_dir() -> Path:
    """``$WXOPS_SERVER_DIR``, else ``~/.wxops/server`` (honours ``HOME``)."""
    env = os.environ.get("WXOPS_SERVER_DIR")
    return Path(env) if env else Path.home() / ".wxops" / "server"


@dataclass(frozen=True)
class ServerSettings:
    """Everything ``wxops server start`` needs; also what the deploy files are made from."""

    backend: str = DEFAULT_BACKEND
    artifacts: str = ""
    """Artifact destination: a folder or ``s3://...``; default: STATE_DIR/artifacts."""
    host: str = "127.0.0.1"
    port: int = 5000
    default_permission: str = "READ"
    auth_db: str = ""
    """Auth database URI; default: SQLite in the state folder."""
    workers: int = 2
    state_dir: str = ""
    auth_cache_seconds: int = 60
    """How long a worker trusts a checked password (MLflow's auth cache). Checking costs a
    slow password hash per request; a changed password is dropped at once by the worker
    that changed it, by the others within this time. 0 checks every request."""

    def state(self) -> Path:
        return Path(self.state_dir) if self.state_dir else default_state_dir()

    def artifacts_destination(self) -> str:
        return self.artifacts or str((self.state() / "artifacts").resolve())

    def auth_db_uri(self) -> str:
        return self.auth_db or f"sqlite:///{(self.state() / 'auth.db').resolve()}"

    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class ServerInfo:
    """What the pid file records about a started server."""

    pid: int
    url: str
    backend: str
    artifacts: str
    log: str
    started: float


def sqlalchemy_uri(backend: str) -> str:
    """``postgresql://`` -> ``postgresql+psycopg://`` (psycopg 3 is the driver wxops ships)."""
    for prefix in ("postgresql://", "postgres://"):
        if backend.startswith(prefix):
            return "postgresql+psycopg://" + backend.removeprefix(prefix)
    return backend


def redact_uri(uri: str) -> str:
    """A URI with its password replaced by ``***`` (for messages and the pid file)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def require_server_extra(backend: str) -> None:
    """The ``server`` extra: Flask-WTF for the basic-auth app, psycopg for PostgreSQL.

    Checked before anything starts, so a plain install says which extra to add instead of
    leaving a server process that dies on its first import.
    """
    import importlib

    needed = ["flask_wtf"] + ([] if backend.startswith("sqlite:") else ["psycopg"])
    for module in needed:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError("server", f"the team tracking server needs {module} ({exc})") from exc


def check_backend(backend: str) -> str:
    """Validate the backend URI; create its PostgreSQL database when missing.

    Returns the SQLAlchemy URI MLflow is given. SQLite URIs are accepted as they are.
    """
    if backend.startswith("sqlite:///"):
        return backend
    if not backend.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise ServerError(
            f"backend {redact_uri(backend)!r} is not supported: give postgresql://USER@HOST:PORT/DB "
            "(or sqlite:///PATH for a single user)")
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    plain = "postgresql://" + backend.split("://", 1)[1]
    parts = urlsplit(plain)
    dbname = parts.path.lstrip("/")
    if not dbname or "/" in dbname:
        raise ServerError(f"backend {redact_uri(backend)!r} names no database: add /DBNAME at the end")
    admin_uri = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin_uri, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except psycopg.Error as exc:
        raise ServerError(
            f"cannot reach PostgreSQL at {redact_uri(backend)}: {str(exc).strip().splitlines()[0]}; "
            "check host, port, user and that the server runs") from exc
    return sqlalchemy_uri(plain)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the first byte (no window where others can read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def admin_password_file(state: Path) -> Path:
    return state / "admin_password"


def ensure_admin_password(state: Path) -> str:
    """The admin bootstrap password, generated once into a 0600 file."""
    path = admin_password_file(state)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(24)
    _write_private(path, password + "\n")
    return password


def flask_secret(state: Path) -> str:
    """The static CSRF key the auth app needs, the same across restarts and workers."""
    path = state / "flask_secret"
    if not path.exists():
        _write_private(path, secrets.token_hex(32) + "\n")
    return path.read_text(encoding="utf-8").strip()


def write_auth_config(settings: ServerSettings) -> Path:
    """MLflow's basic-auth ini (0600: it holds the admin bootstrap password)."""
    if settings.default_permission not in PERMISSIONS:
        raise ServerError(f"default permission {settings.default_permission!r} is not one of "
                          f"{', '.join(PERMISSIONS)}")
    state = settings.state()
    password = ensure_admin_password(state)
    path = state / "basic_auth.ini"
    _write_private(path, "\n".join([
        "[mlflow]",
        f"default_permission = {settings.default_permission}",
        f"database_uri = {sqlalchemy_uri(settings.auth_db_uri())}",
        f"admin_username = {ADMIN_USER}",
        f"admin_password = {password}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        f"auth_cache_ttl_seconds = {max(0, settings.auth_cache_seconds)}",
        "",
    ]))
    return path


def server_command(settings: ServerSettings, backend_uri: str) -> list[str]:
    """The ``mlflow server`` command line (no secret in it: those are in the ini)."""
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_uri,
        "--serve-artifacts", "--artifacts-destination", settings.artifacts_destination(),
        "--app-name", "basic-auth",
        "--host", settings.host, "--port", str(settings.port),
        "--workers", str(settings.workers),
    ]


def _pid_file(state: Path) -> Path:
    return state / "server.json"


def read_info(state: Path) -> ServerInfo | None:
    """The started server's record, or None (a stale record of a dead process is removed)."""
    path = _pid_file(state)
    if not path.exists():
        return None
    try:
        info = ServerInfo(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise ServerError(f"{path} is damaged ({exc}); delete it after checking no server runs") from exc
    if not _alive(info.pid):
        path.unlink()
        return None
    return info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process, or a reused pid of something else
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"mlflow" in cmdline


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url``/health answers (the auth app leaves it open)."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_server(settings: ServerSettings, *, wait: float = 120.0) -> ServerInfo:
    """Start the server in its own process group; return once it answers ``/health``.

    Nothing is left behind on failure: the process group is killed and the pid file
    removed, and the error carries the last lines of the server log.
    """
    require_server_extra(settings.backend)
    state = settings.state()
    if settings.port < 1 or settings.port > 65535:
        raise ServerError(f"port {settings.port} is out of range 1-65535")
    running = read_info(state)
    if running is not None:
        raise ServerError(f"a server already runs from {state} (pid {running.pid}, {running.url}); "
                          "`wxops server stop` first")
    if not port_free(settings.host, settings.port):
        raise ServerError(f"port {settings.port} on {settings.host} is in use; pick another with --port")
    backend_uri = check_backend(settings.backend)
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    ini = write_auth_config(settings)
    if not settings.artifacts.startswith("s3://"):
        Path(settings.artifacts_destination()).mkdir(parents=True, exist_ok=True)
    log = state / "server.log"
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": flask_secret(state)}
    # Everything in the state folder is private (0600): the log, and the auth database
    # and anything else the server process creates there (umask 077), also files left
    # by an earlier version.
    for existing in state.iterdir():
        if existing.is_file():
            os.chmod(existing, 0o600)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as out:
        proc = subprocess.Popen(server_command(settings, backend_uri), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True, umask=0o077)
    info = ServerInfo(pid=proc.pid, url=settings.url(), backend=redact_uri(settings.backend),
                      artifacts=settings.artifacts_destination(), log=str(log), started=time.time())
    _write_private(_pid_file(state), json.dumps(asdict(info)))
    deadline = time.monotonic() + wait
    while not healthy(info.url):
        if proc.poll() is not None or time.monotonic() > deadline:
            _kill_group(proc.pid)
            _pid_file(state).unlink(missing_ok=True)
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            raise ServerError(f"mlflow server did not come up on {info.url}; last log lines:\n"
                              + "\n".join(tail))
        time.sleep(0.5)
    return info


def _kill_group(pid: int, grace: float = 15.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def stop_server(state: Path) -> ServerInfo | None:
    """Stop the server started from ``state`` (its whole process group); None if none ran."""
    info = read_info(state)
    if info is None:
        return None
    _kill_group(info.pid)
    _pid_file(state).unlink(missing_ok=True)
    return info
