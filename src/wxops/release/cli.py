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
    from wxops.release.cycle import Evaluation

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="wxops.yaml; default: ./wxops.yaml, else the visibility example."),
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why: kept in the alias history.")]


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _setup(config: Path | None) -> tuple[WxopsConfig, Path]:
    from wxops import tracking
    from wxops.config import load_config
    from wxops.config_lookup import use_config
    from wxops.startup import configure_process

    configure_process()
    config = use_config(config)
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
    from wxops.terminal import show_table

    try:
        cfg, project_dir = _setup(config)
        name = cfg.tracking.registered_model
        version = resolve_version(name, model)
        ev = evaluate_version(cfg, project_dir=project_dir, version=version)
    except WxopsError as exc:
        _fail(exc)
        return
    show_table(GATE_TITLE, GATE_COLUMNS, _gate_rows(ev))
    console = Console()
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


GATE_TITLE = "quality gate (forecast-cycling replay)"
GATE_COLUMNS = ("rule", "n", "events", "candidate", "reference", "effect", "95 % CI", "p-value", "result")


def _gate_rows(ev: Evaluation) -> list[tuple[str, ...]]:
    from rich.markup import escape

    def f(v: float | None) -> str:
        return "–" if v is None or v != v else f"{v:.4g}"

    rows: list[tuple[str, ...]] = []
    for r in ev.gate.rows:
        color = {"pass": "green", "fail": "red"}.get(r.status, "dim")
        ci = "–" if r.ci_low is None else f"\\[{f(r.ci_low)}, {f(r.ci_high)}]"
        rows.append((r.rule, str(r.n or "–"), str(r.events if r.events is not None else "–"),
                     f(r.candidate), f(r.reference), f(r.effect), ci, f(r.p_value),
                     f"[{color}]{r.status}[/]: {escape(r.why)}"))
    for c in ev.technical.checks:
        rows.append((f"technical: {c.name}", "", "", "", "", "", "", "",
                     f"[{'green' if c.passed else 'red'}]{'pass' if c.passed else 'fail'}[/]:"
                     f" {escape(c.detail)}"))
    return rows


def promote_cmd(
    version: Annotated[str, typer.Argument(
        help="Version to promote (7, visibility/7, @challenger).")],
    reason: ReasonOpt = "",
    force: Annotated[bool, typer.Option("--force", help="Promote even if the gate fails "
                                        "(recorded as forced).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Promote a version to champion if it passes technical tests and the quality gate."""
    from wxops.release.cycle import promote_version, resolve_version
    from wxops.terminal import show_table

    try:
        cfg, project_dir = _setup(config)
        number = resolve_version(cfg.tracking.registered_model, version)
        promo = promote_version(cfg, project_dir=project_dir, version=number,
                                reason=reason, force=force)
    except WxopsError as exc:
        _fail(exc)
        return
    if promo.evaluation is not None:
        show_table(GATE_TITLE, GATE_COLUMNS, _gate_rows(promo.evaluation))
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
    from rich.markup import escape

    from wxops.release.cycle import read_history
    from wxops.release.history import champion_at, parse_time
    from wxops.terminal import show_table

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
    rows = [(str(e.seq), e.time, escape(e.user), e.action, e.from_version or "–", e.to_version or "–",
             e.gate, "yes" if e.forced else "", escape(e.reason)) for e in entries]
    show_table(f"alias history of '{cfg.tracking.registered_model}'",
               ("#", "time (UTC)", "user", "action", "from", "to", "gate", "forced", "reason"), rows)


def register(app: typer.Typer) -> None:
    """Add ``verify``, ``promote``, ``rollback`` and ``history`` to the wxops app."""
    app.command("verify")(verify_cmd)
    app.command("promote")(promote_cmd)
    app.command("rollback")(rollback_cmd)
    app.command("history")(history_cmd)
