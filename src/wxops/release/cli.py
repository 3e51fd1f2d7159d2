"""``wxops verify | promote | rollback | history``: the release cycle on the command line.

Wired into the main app by ``register(app)``; each command parses, loads the config,
connects to the registry and calls :mod:`wxops.release.cycle`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wxops.config import WxopsConfig
from wxops.errors import WxopsError

if TYPE_CHECKING:
    from rich.table import Table

    from wxops.release.cycle import Evaluation

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="wxops.yaml; default: the visibility example."),
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why: kept in the alias history.")]


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _setup(config: Path | None) -> tuple[WxopsConfig, Path]:
    from wxops import tracking
    from wxops.config import load_config
    from wxops.startup import configure_process

    configure_process()
    project_dir = (config.resolve().parent if config is not None else Path.cwd()).resolve()
    cfg = load_config(config)
    tracking.connect(tracking.resolve_tracking_uri(cfg.tracking.uri, project_dir), secrets=cfg.tracking.secrets)
    return cfg, project_dir


def verify_cmd(
    config: ConfigOpt = None,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="Version to verify: 7, visibility/7 or visibility@challenger "
        "(default: the challenger, else the champion).")] = None,
) -> None:
    """Verify a model version: scores vs references and champion, gate verdict, HTML report.

    Exits 6 when the gate (or a technical test) rejects the version, 0 when it passes.
    """
    from rich.console import Console

    from wxops.release.cycle import evaluate_version, resolve_version

    try:
        cfg, project_dir = _setup(config)
        name = cfg.tracking.registered_model
        version = resolve_version(name, model)
        ev = evaluate_version(cfg, project_dir=project_dir, version=version)
    except WxopsError as exc:
        _fail(exc)
        return
    console = Console()
    console.print(_gate_table(ev))
    from wxops.verify.score_table import score_names

    cols = ["n", *score_names(cfg.verify.thresholds, counts=("hits", "misses"), headline=True)]
    scores = ev.replay.scores[[c for c in cols if c in ev.replay.scores]]
    console.print(scores.to_string(float_format=lambda v: f"{v:.3g}"))
    verdict = "[green]PASS[/]" if ev.passed else "[red]FAIL[/]"
    console.print(f"{name} version {version}: {verdict} — {ev.why()}")
    typer.echo(f"report: {ev.report}")
    if not ev.passed:  # a CI "verify and gate" step fails on it: see wxops.exit_codes
        from wxops.exit_codes import EXIT_GATE_REJECTED

        raise typer.Exit(code=EXIT_GATE_REJECTED)


def _gate_table(ev: Evaluation) -> Table:
    from rich.table import Table

    table = Table(title="quality gate (forecast-cycling replay)")
    for col in ("rule", "n", "events", "candidate", "reference", "effect", "95 % CI",
                "p-value", "result"):
        table.add_column(col)

    def f(v: float | None) -> str:
        return "–" if v is None or v != v else f"{v:.4g}"

    for r in ev.gate.rows:
        color = {"pass": "green", "fail": "red"}.get(r.status, "dim")
        ci = "–" if r.ci_low is None else f"[{f(r.ci_low)}, {f(r.ci_high)}]"
        table.add_row(r.rule, str(r.n or "–"), str(r.events if r.events is not None else "–"),
                      f(r.candidate), f(r.reference), f(r.effect), ci, f(r.p_value),
                      f"[{color}]{r.status}[/]: {r.why}")
    for c in ev.technical.checks:
        table.add_row(f"technical: {c.name}", "", "", "", "", "", "", "",
                      f"[{'green' if c.passed else 'red'}]{'pass' if c.passed else 'fail'}[/]:"
                      f" {c.detail}")
    return table


def promote_cmd(
    version: Annotated[str, typer.Argument(
        help="Version to promote (7, visibility/7, @challenger).")],
    reason: ReasonOpt = "",
    force: Annotated[bool, typer.Option("--force", help="Promote even if the gate fails "
                                        "(recorded as forced).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Promote a version to champion if it passes technical tests and the quality gate."""
    from rich.console import Console

    from wxops.release.cycle import promote_version, resolve_version

    try:
        cfg, project_dir = _setup(config)
        number = resolve_version(cfg.tracking.registered_model, version)
        promo = promote_version(cfg, project_dir=project_dir, version=number,
                                reason=reason, force=force)
    except WxopsError as exc:
        _fail(exc)
        return
    if promo.evaluation is not None:
        Console().print(_gate_table(promo.evaluation))
        typer.echo(f"report: {promo.evaluation.report}")
    typer.secho(promo.message, fg=typer.colors.GREEN if promo.promoted else typer.colors.RED)
    if not promo.promoted:
        from wxops.exit_codes import EXIT_GATE_REJECTED

        raise typer.Exit(code=EXIT_GATE_REJECTED)


def rollback_cmd(reason: ReasonOpt = "", config: ConfigOpt = None) -> None:
    """Give champion back to the version that held it before the current one."""
    from wxops.release.cycle import rollback_champion

    try:
        cfg, project_dir = _setup(config)
        promo = rollback_champion(cfg, reason=reason, project_dir=project_dir)
    except WxopsError as exc:
        _fail(exc)
        return
    typer.echo(promo.message)


def history_cmd(
    at: Annotated[str | None, typer.Option(
        "--at", help="A time (ISO 8601, e.g. 2026-11-26T06:00Z): which version was champion.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """List alias changes (and refused attempts); --at T says which version served at T."""
    from rich.console import Console
    from rich.table import Table

    from wxops.release.cycle import read_history
    from wxops.release.history import champion_at, parse_time

    try:
        cfg, _ = _setup(config)
        entries = read_history(cfg)
        when = parse_time(at) if at is not None else None
    except WxopsError as exc:
        _fail(exc)
        return
    if when is not None:
        holder = champion_at(entries, when)
        typer.echo(f"champion at {when.isoformat()}: "
                   + (f"version {holder}" if holder else "none (no champion yet)"))
        return
    table = Table(title=f"alias history of '{cfg.tracking.registered_model}'")
    for col in ("#", "time (UTC)", "user", "action", "from", "to", "gate", "forced", "reason"):
        table.add_column(col)
    for e in entries:
        table.add_row(str(e.seq), e.time[:19], e.user, e.action, e.from_version or "–",
                      e.to_version or "–", e.gate, "yes" if e.forced else "", e.reason)
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add ``verify``, ``promote``, ``rollback`` and ``history`` to the wxops app."""
    app.command("verify")(verify_cmd)
    app.command("promote")(promote_cmd)
    app.command("rollback")(rollback_cmd)
    app.command("history")(history_cmd)
