"""``wxops serve``: the champion over REST (registered into the main app by ``register``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from wxops.errors import WxopsError


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the wxops CLI."""
    app.command("serve")(serve)


def serve(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="wxops.yaml (for tracking.uri); default: the visibility example.")
    ] = None,
    model: Annotated[str, typer.Option(
        help="NAME@ALIAS (followed as it moves) or NAME/VERSION (pinned).")
    ] = "visibility@champion",
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the port.")] = 1,
    threads: Annotated[int | None, typer.Option(
        help="Threads per worker for PyTorch/OpenMP/MKL/OpenBLAS; default: the cores this "
             "process may use (affinity, cgroup quota) // --workers.", min=1)] = None,
    queue_limit: Annotated[int, typer.Option(
        help="Predictions waiting or running off the event loop; more are answered 503 "
             "with Retry-After.", min=1)] = 32,
    inline_ms: Annotated[float, typer.Option(
        help="Predictions measured to take up to this long (ms) run on the event loop; "
             "longer ones in the bounded prediction pool.", min=0.0)] = 1.0,
    tracking_uri: Annotated[str | None, typer.Option(
        help="MLflow tracking URI; default: the config's, $MLFLOW_TRACKING_URI, else "
             "./mlflow.db.")] = None,
    poll: Annotated[float, typer.Option(
        help="Seconds between registry look-ups of the alias (0: only /admin/reload).")
    ] = 30.0,
    token_file: Annotated[Path | None, typer.Option(
        help="File of 'scopes:token' lines, mode 0600 (besides $WXOPS_SERVE_TOKENS).")
    ] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Switch bearer-token auth off (loopback only, for local use).")
    ] = False,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body (MiB); 413 above.")
    ] = 8.0,
    prediction_log: Annotated[Path | None, typer.Option(
        help="Prediction log: a SQLite file, or a Parquet folder with --log-format parquet.")
    ] = None,
    log_format: Annotated[str, typer.Option(help="sqlite or parquet.")] = "sqlite",
    flush_seconds: Annotated[float, typer.Option(
        help="Prediction-log flush interval: a crash loses at most this much.")] = 1.0,
) -> None:
    """Serve a registered model over REST: /predict, /invocations, /model, /metrics, /docs."""
    from wxops.config import load_config
    from wxops.serve.server import serve as run_server
    from wxops.serve.settings import PredictionLogSettings, ServeSettings
    from wxops.tracking import resolve_tracking_uri

    try:
        cfg = load_config(config)
        project = (config.resolve().parent if config is not None else Path.cwd()).resolve()
        uri = tracking_uri or resolve_tracking_uri(cfg.tracking.uri, project)
        if log_format not in ("sqlite", "parquet"):
            raise WxopsError(f"--log-format {log_format!r}: use sqlite or parquet")
        fmt: Literal["sqlite", "parquet"] = "sqlite" if log_format == "sqlite" else "parquet"
        settings = ServeSettings(
            model=model, tracking_uri=uri, host=host, port=port, workers=workers,
            threads=threads, queue_limit=queue_limit, inline_ms=inline_ms,
            poll_seconds=poll, max_body_bytes=int(max_body_mb * 1024 * 1024),
            auth=not no_auth, token_file=token_file,
            prediction_log=PredictionLogSettings(path=prediction_log, format=fmt,
                                                 flush_seconds=flush_seconds),
        )
        run_server(settings)
    except WxopsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
