"""``wxops monitor``: live verification, drift, alerts (registered into the main app).

Exit codes (for cron, Airflow, systemd): see :mod:`wxops.monitor.alerts` —
0 healthy, 1 error, 2 usage, 3 stale/missing data, 4 drift, 5 live-score incident.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from wxops.errors import WxopsError

monitor_app = typer.Typer(help="Live verification, drift and alerts for the served model.",
                          invoke_without_command=True)

_OBS_SUFFIXES = (".csv", ".parquet", ".pq", ".gz")


def register(app: typer.Typer) -> None:
    """Add ``wxops monitor`` (and ``wxops monitor report|rules``) to the wxops CLI."""
    app.add_typer(monitor_app, name="monitor")


def _project(config: Path | None) -> Path:
    return (config.resolve().parent if config is not None else Path.cwd()).resolve()


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _observation_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise WxopsError(f"--observations-dir {folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _OBS_SUFFIXES
                  and not p.name.startswith("."))


@monitor_app.callback()
def monitor(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="wxops.yaml.")] = None,
    observations: Annotated[list[Path] | None, typer.Option(
        "--observations", help="Observation file(s), CSV or Parquet: time, target, [station].")] = None,
    observations_dir: Annotated[Path | None, typer.Option(
        help="Folder of observation files (all read together; --watch polls it).")] = None,
    window: Annotated[str | None, typer.Option(help="Rolling window, e.g. 7d (default: monitor.window).")
                      ] = None,
    prediction_log: Annotated[Path | None, typer.Option(help="The service's prediction log.")] = None,
    now: Annotated[str | None, typer.Option(help="Clock for data ages (UTC), for replays.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Run as a service: poll the folder.")] = False,
    interval: Annotated[float, typer.Option(help="--watch: seconds between polls.")] = 60.0,
    max_cycles: Annotated[int, typer.Option(help="--watch: stop after this many runs (0: never).")] = 0,
    metrics_port: Annotated[int | None, typer.Option(
        help="--watch: port of /metrics on 127.0.0.1 (default monitor.metrics_port).")] = None,
    no_action: Annotated[bool, typer.Option("--no-action", help="Report incidents, do not act.")] = False,
) -> None:
    """Join forecasts with observations, score windows, check drift and data age, act."""
    if ctx.invoked_subcommand is not None:
        return
    import pandas as pd

    from wxops.config import load_config
    from wxops.config_lookup import use_config
    from wxops.monitor.metrics import MonitorMetrics
    from wxops.monitor.report import write_status_page
    from wxops.monitor.rules import write_rules
    from wxops.monitor.run import monitor_dir, monitor_once, save_outputs
    from wxops.startup import configure_process

    configure_process()
    try:
        config = use_config(config)
        cfg = load_config(config)
        project = _project(config)
        clock = pd.Timestamp(now).tz_localize(None) if now else None
        out = monitor_dir(project)
        write_rules(cfg.monitor, out)
        metrics = MonitorMetrics()

        def once() -> int:
            files = list(observations or [])
            if observations_dir is not None:
                files += _observation_files(observations_dir)
            result = monitor_once(cfg, project_dir=project, observations=files,
                                  prediction_log=prediction_log, window=window, now=clock,
                                  act=not no_action)
            save_outputs(result, out)
            page = write_status_page(out)
            metrics.update(result)
            metrics.write(out / "metrics.prom")
            for alert in result.alerts:
                typer.echo(f"{alert.kind}: {alert.message}")
            if result.incident is not None:
                typer.echo(f"incident: {result.incident.outcome}")
            typer.echo(f"{result.model} v{result.version}: exit {result.exit_code}; "
                       f"{result.joined_total} pairs; status page {page}")
            return result.exit_code

        if not watch:
            raise typer.Exit(code=once())
        if observations_dir is None:
            raise WxopsError("--watch needs --observations-dir (the folder new files arrive in)")
        server, port = metrics.serve(cfg.monitor.metrics_port if metrics_port is None else metrics_port)
        typer.echo(f"monitor metrics on http://127.0.0.1:{port}/metrics")
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        seen: dict[str, float] = {}
        cycles = 0
        try:
            while not stop.is_set():
                files = {str(p): p.stat().st_mtime for p in _observation_files(observations_dir)}
                if files and files != seen:
                    seen = files
                    try:
                        once()
                    except WxopsError as exc:  # a bad file must not stop the service
                        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
                    cycles += 1
                    if max_cycles and cycles >= max_cycles:
                        break
                stop.wait(interval)
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
    except WxopsError as exc:
        raise _fail(exc) from None


@monitor_app.command("report")
def report(config: Annotated[Path | None, typer.Option("--config", "-c", help="wxops.yaml.")] = None) -> None:
    """Write the HTML status page (plots) from the last monitor run."""
    from wxops.config_lookup import use_config
    from wxops.monitor.report import write_status_page
    from wxops.monitor.run import monitor_dir

    try:
        page = write_status_page(monitor_dir(_project(use_config(config))))
    except WxopsError as exc:
        raise _fail(exc) from None
    typer.echo(str(page))


@monitor_app.command("rules")
def rules(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="wxops.yaml.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder (default wxops-out/monitor).")] = None,
) -> None:
    """Write the Prometheus alert rules and the Grafana dashboard JSON."""
    from wxops.config import load_config
    from wxops.config_lookup import use_config
    from wxops.monitor.rules import write_rules
    from wxops.monitor.run import monitor_dir

    try:
        config = use_config(config)
        cfg = load_config(config)
        paths = write_rules(cfg.monitor, out or monitor_dir(_project(config)))
    except WxopsError as exc:
        raise _fail(exc) from None
    for path in paths.values():
        typer.echo(str(path))


