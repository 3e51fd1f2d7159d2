"""``wxops serve``: the champion over REST (registered into the main app by ``register``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wxops.errors import WxopsError


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the wxops CLI."""
    app.command("serve")(serve)


def serve(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="wxops.yaml (for tracking.uri); default: ./wxops.yaml, else the visibility example.")
    ] = None,
    model: Annotated[str | None, typer.Option(
        help="NAME@ALIAS (followed as it moves) or NAME/VERSION (pinned). "
             "[env WXOPS_SERVE_MODEL; default visibility@champion]")
    ] = None,
    host: Annotated[str | None, typer.Option(
        help="Interface to listen on. [env WXOPS_SERVE_HOST; default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(
        help="Port (0: any free port). [env WXOPS_SERVE_PORT; default 8080]")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes sharing the port. [env WXOPS_SERVE_WORKERS; default 1]")] = None,
    threads: Annotated[int | None, typer.Option(
        help="Threads per worker for PyTorch/OpenMP/MKL/OpenBLAS; default: the cores this "
             "process may use (affinity, cgroup quota) // --workers. [env WXOPS_SERVE_THREADS]",
        min=1)] = None,
    queue_limit: Annotated[int | None, typer.Option(
        help="Predictions waiting or running off the event loop; more are answered 503 "
             "with Retry-After. [env WXOPS_SERVE_QUEUE_LIMIT; default 32]", min=1)] = None,
    inline_ms: Annotated[float | None, typer.Option(
        help="Predictions measured to take up to this long (ms) run on the event loop; "
             "longer ones in the bounded prediction pool. [env WXOPS_SERVE_INLINE_MS; default 1]",
        min=0.0)] = None,
    tracking_uri: Annotated[str | None, typer.Option(
        help="MLflow tracking URI [env WXOPS_SERVE_TRACKING_URI]; default: the config's, "
             "$MLFLOW_TRACKING_URI, else ./mlflow.db.")] = None,
    poll: Annotated[float | None, typer.Option(
        help="Seconds between registry look-ups of the alias (0: only /admin/reload). "
             "[env WXOPS_SERVE_POLL_SECONDS; default 30]")
    ] = None,
    token_file: Annotated[Path | None, typer.Option(
        help="File of 'scopes:token' lines, mode 0600 (besides $WXOPS_SERVE_TOKENS). "
             "[env WXOPS_SERVE_TOKEN_FILE]")
    ] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Switch bearer-token auth off (loopback only, for local use).")
    ] = False,
    max_body_mb: Annotated[float | None, typer.Option(
        help="Largest request body (MiB); 413 above. [env WXOPS_SERVE_MAX_BODY_BYTES, in "
             "bytes; default 8 MiB]")
    ] = None,
    prediction_log: Annotated[Path | None, typer.Option(
        help="Prediction log: a SQLite file, or a Parquet folder with --log-format parquet. "
             "[env WXOPS_SERVE_PREDICTION_LOG__PATH]")
    ] = None,
    log_format: Annotated[str | None, typer.Option(
        help="sqlite or parquet. [env WXOPS_SERVE_PREDICTION_LOG__FORMAT]")] = None,
    flush_seconds: Annotated[float | None, typer.Option(
        help="Prediction-log flush interval: a crash loses at most this much. "
             "[env WXOPS_SERVE_PREDICTION_LOG__FLUSH_SECONDS; default 1]")] = None,
) -> None:
    """Serve a registered model over REST: /predict, /invocations, /model, /metrics, /docs.

    Every option can also be set by its WXOPS_SERVE_* environment variable (an option
    given here wins); tokens come from WXOPS_SERVE_TOKENS and/or the token file.
    """
    import os

    from pydantic import ValidationError

    from wxops.config import load_config
    from wxops.config_lookup import use_config
    from wxops.serve.server import serve as run_server
    from wxops.serve.settings import ENV_PREFIX, ServeSettings, unknown_env
    from wxops.tracking import resolve_tracking_uri

    try:
        stray = unknown_env()
        if stray:
            raise WxopsError(f"unknown setting(s) {', '.join(stray)}: the service reads "
                             f"{ENV_PREFIX}<OPTION> (e.g. {ENV_PREFIX}PORT); see `wxops serve --help`")
        if log_format is not None and log_format not in ("sqlite", "parquet"):
            raise WxopsError(f"--log-format {log_format!r}: use sqlite or parquet")
        config = use_config(config)
        cfg = load_config(config)
        project = (config.resolve().parent if config is not None else Path.cwd()).resolve()
        given: dict[str, object] = {
            "model": model, "host": host, "port": port, "workers": workers,
            "threads": threads, "queue_limit": queue_limit, "inline_ms": inline_ms,
            "poll_seconds": poll, "token_file": token_file,
            "max_body_bytes": None if max_body_mb is None else int(max_body_mb * 1024 * 1024),
            "auth": False if no_auth else None,
        }
        log = {"path": prediction_log, "format": log_format, "flush_seconds": flush_seconds}
        if any(v is not None for v in log.values()):
            given["prediction_log"] = {k: v for k, v in log.items() if v is not None}
        if tracking_uri is not None or f"{ENV_PREFIX}TRACKING_URI" not in os.environ:
            given["tracking_uri"] = tracking_uri or resolve_tracking_uri(cfg.tracking.uri, project)
        try:
            settings = ServeSettings(**{k: v for k, v in given.items() if v is not None})  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'__'.join(str(p) for p in e['loc']).upper()} / "
                f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors())
            raise WxopsError(f"bad service setting: {problems}") from None
        run_server(settings)
    except WxopsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
