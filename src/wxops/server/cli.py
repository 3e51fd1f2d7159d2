"""CLI of the team server: ``wxops server ...``, ``wxops login``, ``wxops sync``, ``wxops deploy server``.

Added to the main app by :func:`register`; MLflow and psycopg are imported inside the
commands so ``wxops --help`` stays light. Passwords are prompted or read from stdin,
never taken as arguments (they would land in shell history and ``ps``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from wxops.errors import WxopsError

server_app = typer.Typer(help="The team tracking server: MLflow on PostgreSQL with logins.",
                         no_args_is_help=True)

StateOpt = Annotated[Path | None, typer.Option(
    "--state-dir", help="Pid file, log, auth config, admin password; default ~/.wxops/server.")]
UrlOpt = Annotated[str | None, typer.Option(
    "--url", help="Server URL; default: the one started from --state-dir.")]


def register(app: typer.Typer) -> None:
    """Add ``wxops server``, ``wxops login``, ``wxops sync`` and ``wxops deploy server``."""
    from wxops.deploy.cli import deploy_app

    app.add_typer(server_app, name="server")
    app.command("login")(login)
    app.command("sync")(sync)
    deploy_app.command("server")(deploy_server)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _state(state_dir: Path | None) -> Path:
    from wxops.server.process import default_state_dir

    return (state_dir or default_state_dir()).expanduser().resolve()


@server_app.command("start")
def start(
    backend: Annotated[str, typer.Option(help="PostgreSQL URI (database created if missing).")] = (
        "postgresql://postgres@127.0.0.1:5432/wxops"),
    artifacts: Annotated[str, typer.Option(
        help="Artifact store: a folder or s3://bucket/prefix; default STATE_DIR/artifacts.")] = "",
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
    default_permission: Annotated[str, typer.Option(
        help="Permission of every user on what others made: READ, EDIT, MANAGE, NO_PERMISSIONS.")] = "READ",
    auth_db: Annotated[str, typer.Option(
        help="Database of users and permissions; default SQLite in the state folder.")] = "",
    workers: Annotated[int, typer.Option(help="Server worker processes.")] = 2,
    auth_cache: Annotated[int, typer.Option(
        help="Seconds a worker trusts a checked password (0: hash every request).")] = 60,
    state_dir: StateOpt = None,
) -> None:
    """Start MLflow's tracking server in the background (PostgreSQL, proxied artifacts, auth)."""
    from wxops.server.process import ServerSettings, admin_password_file, start_server

    settings = ServerSettings(backend=backend, artifacts=artifacts, host=host, port=port,
                              default_permission=default_permission.upper(), auth_db=auth_db,
                              workers=workers, auth_cache_seconds=auth_cache, state_dir=str(_state(state_dir)))
    try:
        info = start_server(settings)
    except WxopsError as exc:
        _fail(exc)
        return
    typer.echo(f"mlflow server running at {info.url} (pid {info.pid}), backend {info.backend}, "
               f"artifacts {info.artifacts}\nadmin password in {admin_password_file(settings.state())} "
               f"(mode 0600); log {info.log}")


@server_app.command("status")
def status(state_dir: StateOpt = None) -> None:
    """Whether the server started from the state folder runs and answers (exit 1 if not)."""
    from wxops.server.process import healthy, read_info

    try:
        info = read_info(_state(state_dir))
    except WxopsError as exc:
        _fail(exc)
        return
    if info is None:
        typer.echo("not running")
        raise typer.Exit(code=1)
    answer = "healthy" if healthy(info.url) else "NOT answering /health"
    typer.echo(f"running at {info.url} (pid {info.pid}), {answer}; backend {info.backend}; log {info.log}")
    if answer != "healthy":
        raise typer.Exit(code=1)


@server_app.command("stop")
def stop(state_dir: StateOpt = None) -> None:
    """Stop the server started from the state folder (its whole process group)."""
    from wxops.server.process import stop_server

    try:
        info = stop_server(_state(state_dir))
    except WxopsError as exc:
        _fail(exc)
        return
    typer.echo("not running (nothing to stop)" if info is None else f"stopped server pid {info.pid} ({info.url})")


def _read_password(stdin: bool, prompt: str) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


def _generated_password(state: Path, username: str) -> tuple[str, Path]:
    import secrets

    from wxops.server.process import _write_private

    password = secrets.token_urlsafe(18)
    path = state / "users" / f"{username}.password"
    _write_private(path, password + "\n")
    return password, path


@server_app.command("add-user")
def add_user(
    username: Annotated[str, typer.Argument(help="New user name.")],
    generate: Annotated[bool, typer.Option(
        "--generate", help="Generate the password into STATE_DIR/users/NAME.password (0600).")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    state_dir: StateOpt = None,
    url: UrlOpt = None,
) -> None:
    """Create a user on the server (as admin); the password is prompted, read or generated."""
    from wxops.server import users

    state = _state(state_dir)
    where = None
    try:
        if generate:
            users.server_url(state, url)
            password, where = _generated_password(state, username)
        else:
            password = _read_password(password_stdin, f"password for {username}")
        users.add_user(state, url, username, password)
    except WxopsError as exc:
        if where is not None:
            where.unlink(missing_ok=True)
        _fail(exc)
        return
    extra = f"; password in {where} (mode 0600)" if where else ""
    typer.echo(f"created user {username}{extra}")


@server_app.command("passwd")
def passwd(
    username: Annotated[str, typer.Argument(help="User whose password is set.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    state_dir: StateOpt = None,
    url: UrlOpt = None,
) -> None:
    """Set a user's password (as admin)."""
    from wxops.server import users

    state = _state(state_dir)
    try:
        users.server_url(state, url)
        users.set_password(state, url, username, _read_password(password_stdin, f"new password for {username}"))
    except WxopsError as exc:
        _fail(exc)
        return
    typer.echo(f"password of {username} changed")


@server_app.command("grant")
def grant(
    username: Annotated[str, typer.Argument(help="User.")],
    target: Annotated[str, typer.Argument(help="Experiment name (or registered model with --model).")],
    permission: Annotated[str, typer.Argument(help="READ, EDIT, MANAGE or NO_PERMISSIONS.")],
    model: Annotated[bool, typer.Option("--model", help="TARGET is a registered model.")] = False,
    state_dir: StateOpt = None,
    url: UrlOpt = None,
) -> None:
    """Give a user a permission on one experiment or registered model."""
    from wxops.server import users

    try:
        message = users.grant(_state(state_dir), url, username, target, permission, model=model)
    except WxopsError as exc:
        _fail(exc)
        return
    typer.echo(message)


def login(
    url: Annotated[str, typer.Argument(help="Tracking server, e.g. https://mlflow.example.org")],
    username: Annotated[str | None, typer.Option("--username", "-u", help="User name (prompted if absent).")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password (and with --change-password the new one) from stdin.")] = False,
    change_password: Annotated[bool, typer.Option("--change-password", help="Set a new password now.")] = False,
) -> None:
    """Log in to a tracking server: check the password, then write ~/.mlflow/credentials (0600)."""
    from wxops.server.login import login as do_login

    user = username or str(typer.prompt("user"))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        new = sys.stdin.readline().rstrip("\n") if change_password else None
    else:
        password = str(typer.prompt("password", hide_input=True))
        new = (str(typer.prompt("new password", hide_input=True, confirmation_prompt=True))
               if change_password else None)
    try:
        path = do_login(url, user, password, new_password=new)
    except WxopsError as exc:
        _fail(exc)
        return
    changed = " (password changed)" if new is not None else ""
    typer.echo(f"logged in to {url} as {user}{changed}; credentials in {path} (mode 0600)")


def sync(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="wxops.yaml (its folder holds the outbox).")]
    = None,
    outbox: Annotated[Path | None, typer.Option(help="Outbox folder; default PROJECT/.wxops/outbox.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Server URI; default: the one each run was meant for.")]
    = None,
) -> None:
    """Upload runs logged offline (while the server was unreachable); safe to repeat.

    A version registered offline arrives as ``challenger``; with ``--config`` the release
    gate of that project then decides on the server, as ``wxops run`` would have: exit 6
    when it rejects.
    """
    from wxops.exit_codes import EXIT_GATE_REJECTED
    from wxops.outbox import default_outbox
    from wxops.startup import configure_process
    from wxops.sync import sync_outbox

    configure_process()
    project = (config.resolve().parent if config is not None else Path.cwd()).resolve()
    folder = outbox or default_outbox(project)
    try:
        report = sync_outbox(folder, target=to, echo=typer.echo)
    except WxopsError as exc:
        _fail(exc)
        return
    typer.echo(report.summary())
    rejected = False
    for name, version, uri in report.registered:
        try:
            rejected |= not _gate_synced(config, project, name, version, uri)
        except WxopsError as exc:
            _fail(exc)
    if rejected:
        raise typer.Exit(code=EXIT_GATE_REJECTED)


def _gate_synced(config: Path | None, project: Path, name: str, version: str, uri: str) -> bool:
    """Run the release gate on a version sync registered; False when it rejects."""
    from wxops import tracking
    from wxops.config import load_config
    from wxops.release.cycle import promote_version

    if config is None:
        typer.echo(f"{name} v{version} stays challenger: give --config of its project to gate it")
        return True
    cfg = load_config(config)
    if name not in (cfg.tracking.registered_model, cfg.tracking.probability_model):
        typer.echo(f"{name} v{version} stays challenger: give --config of its project to gate it")
        return True
    if cfg.data.is_nwp:
        typer.echo(f"{name} v{version} stays challenger (gate not applied to NWP tables: "
                   "promote with `wxops promote`)")
        return True
    tracking.connect(uri, secrets=cfg.tracking.secrets)
    promo = promote_version(cfg, project_dir=project, version=version,
                            reason="wxops sync: version of an offline run", model=name)
    typer.echo(f"{name} {promo.message}")
    return promo.promoted


def deploy_server(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the files.")] = Path("deploy/server"),
    backend: Annotated[str, typer.Option(help="PostgreSQL URI the server uses.")] = (
        "postgresql://mlflow@db:5432/mlflow"),
    artifacts: Annotated[str, typer.Option(help="Artifact destination (folder or s3://).")] = "/srv/wxops/artifacts",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
    default_permission: Annotated[str, typer.Option(help="READ, EDIT, MANAGE or NO_PERMISSIONS.")] = "READ",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a systemd unit and a compose service running the same team server."""
    from wxops.server.deploy import write_server_files

    try:
        written = write_server_files(out, backend=backend, artifacts=artifacts, port=port,
                                     default_permission=default_permission.upper(), force=force)
    except WxopsError as exc:
        _fail(exc)
        return
    for path in written:
        typer.echo(f"wrote {path}")
