"""Command line: parse arguments, load the config, call a stage or the pipeline.

Heavy libraries (MLflow, PyTorch, pandas) are imported inside the commands that need
them, so ``wxops --help`` starts in a fraction of a second.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from wxops.config import WxopsConfig, config_schema, load_config
from wxops.errors import WxopsError

app = typer.Typer(
    help="MLOps for weather and climate ML: ingest, train, track, register.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check or describe wxops.yaml.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="wxops.yaml; default: ./wxops.yaml, else the visibility example."),
]


@app.callback()
def _options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Show the INFO lines of MLflow and other libraries.")] = False,
) -> None:
    """MLOps for weather and climate ML: ingest, train, track, register."""
    if verbose:
        from wxops.startup import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"  # read by configure_process in this and child processes


def _fail(exc: Exception) -> None:
    from wxops.tracking import failed_runs_cleanup

    failed_runs_cleanup()
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _project_dir(config: Path | None) -> Path:
    return (config.resolve().parent if config is not None else Path.cwd()).resolve()


def _find(config: Path | None) -> Path | None:
    """The config this command uses (``-c``, else ./wxops.yaml, else None), said on stderr."""
    from wxops.config_lookup import use_config

    return use_config(config)


def _load(config: Path | None) -> WxopsConfig:
    try:
        return load_config(config)
    except WxopsError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


@app.command()
def run(
    config: ConfigOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute every stage.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run the pipeline: ingest+QC, features, split, train every config, register the best."""
    from wxops.startup import apply_thread_budget, configure_process, thread_budget

    configure_process()
    apply_thread_budget(thread_budget(1))  # in-process training: the cores it may use
    config = _find(config)
    cfg = _load(config)
    from wxops.pipeline import run_pipeline
    from wxops.progress import SilentReporter, terminal_reporter

    try:
        if quiet:
            result = run_pipeline(cfg, project_dir=_project_dir(config),
                                  use_cache=not no_cache, reporter=SilentReporter())
        else:
            with terminal_reporter() as reporter:
                result = run_pipeline(cfg, project_dir=_project_dir(config),
                                      use_cache=not no_cache, reporter=reporter)
    except WxopsError as exc:
        _fail(exc)
        return
    if result.fully_cached:
        typer.echo("nothing changed: every stage skipped (cached); use --no-cache to recompute")
    elif result.cached_stages:
        typer.echo(f"reused from cache: {', '.join(result.cached_stages)}")
    from wxops.data.qc import VARIABLES

    best = result.metrics[result.best]
    target = VARIABLES.get(cfg.features.target)
    unit = f" {target.units}" if target else ""
    alias = "champion" if result.became_champion else "challenger"
    if result.release_message and quiet:  # otherwise the progress display already said it
        typer.echo(result.release_message)
    if result.report:
        typer.echo(f"verification report: {result.report}")
    typer.echo(
        f"best: {result.best} (val_rmse {best['val_rmse']:.4g}{unit}) -> "
        f"{result.registered_model} version {result.version} [{alias}]\n"
        f"pipeline run {result.run_id} in experiment '{result.experiment}' at "
        f"{result.tracking_uri}\noutputs in {result.out_dir}  ({result.wall_seconds:.1f} s)"
    )
    if result.selection and quiet:
        typer.echo(f"selection: {result.selection}")
    for line in result.summary:
        typer.echo(line)
    if result.probability_version:
        alias = "champion" if result.probability_champion else "challenger"
        typer.echo(f"probability: {result.probability_best} -> {result.probability_model} "
                   f"version {result.probability_version} [{alias}]"
                   + (f": {result.probability_message}" if result.probability_message else ""))
    if result.gate_passed is False or result.probability_gate_passed is False:
        # a scheduler acts on it: see wxops.exit_codes
        from wxops.exit_codes import EXIT_GATE_REJECTED

        raise typer.Exit(code=EXIT_GATE_REJECTED)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new use case.")],
) -> None:
    """Scaffold a project folder with a commented wxops.yaml (the visibility example)."""
    target = directory / "wxops.yaml"
    if target.exists():
        _fail(WxopsError(f"{target} already exists; not overwriting it"))
    directory.mkdir(parents=True, exist_ok=True)
    template = resources.files("wxops").joinpath("templates/wxops.yaml").read_text("utf-8")
    target.write_text(template, encoding="utf-8")
    typer.echo(f"wrote {target}; edit it, then run `wxops run` in {directory} (or: wxops run -c {target})")


@config_app.command("validate")
def config_validate(config: ConfigOpt = None) -> None:
    """Parse and check the config; print the typed result."""
    config = _find(config)
    cfg = _load(config)
    typer.echo(f"{config or 'default config'}: valid ({len(cfg.models)} model configurations)")


@config_app.command("schema")
def config_schema_cmd() -> None:
    """Print the JSON schema of wxops.yaml."""
    typer.echo(json.dumps(config_schema(), indent=2))


@app.command()
def ui(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
) -> None:
    """Open the MLflow UI on this project's tracking store."""
    from wxops import tracking
    from wxops.startup import configure_process

    configure_process()
    config = _find(config)
    cfg = _load(config)
    uri = tracking.resolve_tracking_uri(cfg.tracking.uri, _project_dir(config))
    if not uri.startswith(("sqlite:", "postgresql", "mysql", "file:", "/")):
        typer.echo(f"tracking store is a server ({uri}): open it in a browser")
        raise typer.Exit(0)
    tracking.connect(uri)
    link = tracking.ui_link(f"http://{host}:{port}", cfg.tracking.experiment)
    typer.echo(f"MLflow UI for {uri} on {link}  (Ctrl+C stops it)")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", host, "--port", str(port)]
    # Replace this process, so Ctrl+C and kill reach the MLflow server directly instead of
    # leaving it orphaned behind a dead wrapper.
    sys.stdout.flush()
    os.execv(sys.executable, cmd)


@app.command()
def runs(
    config: ConfigOpt = None,
    filter_string: Annotated[str, typer.Option(
        "--filter", "-f", help="MLflow search filter, e.g. \"metrics.val_rmse < 3000\".")] = "",
    limit: Annotated[int, typer.Option(help="Most runs to list.")] = 50,
) -> None:
    """List runs of the experiment, filtered as in the MLflow UI."""
    from wxops import tracking
    from wxops.startup import configure_process
    from wxops.terminal import show_table

    configure_process()
    config = _find(config)
    cfg = _load(config)
    uri = tracking.resolve_tracking_uri(cfg.tracking.uri, _project_dir(config))
    try:
        tracking.connect(uri)
        found = tracking.search_runs(cfg.tracking.experiment, filter_string, max_results=limit)
    except WxopsError as exc:
        _fail(exc)
        return
    rows = [(r["run_id"], r["name"], r["model"], r["status"],
             f"{r['metrics']['val_rmse']:.1f}" if "val_rmse" in r["metrics"] else "",
             f"{r['metrics']['val_mae']:.1f}" if "val_mae" in r["metrics"] else "") for r in found]
    show_table(f"{len(found)} run(s) in '{cfg.tracking.experiment}'",
               ("run_id", "name", "model", "status", "val_rmse", "val_mae"), rows)


def _register_extensions() -> None:
    from wxops.data.cli import register as register_synth
    from wxops.deploy.cli import register as register_deploy
    from wxops.monitor.cli import register as register_monitor
    from wxops.release.cli import register as register_release
    from wxops.serve.cli import register as register_serve
    from wxops.server.cli import register as register_server

    register_release(app)
    register_serve(app)
    register_monitor(app)
    register_deploy(app)
    register_synth(app)
    register_server(app)


_register_extensions()


def _quiet_flag_types(command: Any) -> None:
    """No ``<bool>`` beside on/off flags in the help (typer shows every option's type)."""
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    make_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = make_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _quiet_flag_types(sub)


def main() -> None:
    """Entry point of the ``wxops`` command."""
    command = typer.main.get_command(app)
    _quiet_flag_types(command)
    command(prog_name="wxops")


if __name__ == "__main__":
    main()
