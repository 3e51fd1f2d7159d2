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
    from wxops.release.probability_cycle import ProbabilityEvaluation

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="wxops.yaml; default: ./wxops.yaml, else the visibility example."),
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why: kept in the alias history.")]
ModelNameOpt = Annotated[str | None, typer.Option(
    "--model", "-m", help="Registered model: tracking.registered_model (default) or "
    "tracking.probability_model (e.g. visibility-prob).")]


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
        "--model", "-m", help="Version to verify: 7, visibility/7, visibility@challenger, "
        "visibility-prob/2 or just visibility-prob (default: the challenger, else the "
        "champion, of tracking.registered_model).")] = None,
) -> None:
    """Verify a model version: scores vs references and champion, gate verdict, HTML report.

    Exits 6 when the gate (or a technical test) rejects the version, 0 when it passes.
    """
    from rich.console import Console

    from wxops.release.cycle import evaluate_version, is_probability_model, resolve_model_version
    from wxops.terminal import show_table

    try:
        cfg, project_dir = _setup(config)
        name, version = resolve_model_version(cfg, model)
        if is_probability_model(cfg, name):
            from wxops.release.probability_cycle import evaluate_probability_version

            pev = evaluate_probability_version(cfg, project_dir=project_dir, version=version)
        else:
            ev = evaluate_version(cfg, project_dir=project_dir, version=version)
    except WxopsError as exc:
        _fail(exc)
        return
    if is_probability_model(cfg, name):
        _show_probability(pev)
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


def _show_probability(ev: ProbabilityEvaluation) -> None:
    """The probability gate's table, Brier skill per threshold, the verdict; exit 6 on fail."""
    from rich.console import Console

    from wxops.terminal import show_table

    show_table("probability gate (test block)", GATE_COLUMNS, _gate_rows(ev))
    console = Console()
    for line in ev.verification.summary(f"version {ev.version}"):
        console.print(line, markup=False, highlight=False)
    verdict = "[green]PASS[/]" if ev.passed else "[red]FAIL[/]"
    console.print(f"{ev.name} version {ev.version}: {verdict} — {ev.why()}")
    typer.echo(f"report: {ev.report}")
    if not ev.passed:
        from wxops.exit_codes import EXIT_GATE_REJECTED

        raise typer.Exit(code=EXIT_GATE_REJECTED)


GATE_TITLE = "quality gate (forecast-cycling replay)"
GATE_COLUMNS = ("rule", "n", "events", "candidate", "reference", "effect", "95 % CI", "p-value", "result")


def _gate_rows(ev: Evaluation | ProbabilityEvaluation) -> list[tuple[str, ...]]:
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
        help="Version to promote (7, visibility/7, @challenger, visibility-prob/2).")],
    reason: ReasonOpt = "",
    force: Annotated[bool, typer.Option("--force", help="Promote even if the gate fails "
                                        "(recorded as forced).")] = False,
    model: ModelNameOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Promote a version to champion if it passes technical tests and the quality gate
    (the probability gate for a version of tracking.probability_model)."""
    from wxops.release.cycle import promote_version, resolve_model_version
    from wxops.terminal import show_table

    try:
        cfg, project_dir = _setup(config)
        name, number = resolve_model_version(cfg, version, model)
        promo = promote_version(cfg, project_dir=project_dir, version=number,
                                reason=reason, force=force, model=name)
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


def rollback_cmd(reason: ReasonOpt = "", model: ModelNameOpt = None,
                 config: ConfigOpt = None) -> None:
    """Give champion back to the version that held it before the current one."""
    from wxops.release.cycle import rollback_champion

    try:
        cfg, project_dir = _setup(config)
        promo = rollback_champion(cfg, reason=reason, project_dir=project_dir, model=model)
    except WxopsError as exc:
        _fail(exc)
        return
    typer.echo(promo.message)


def history_cmd(
    at: Annotated[str | None, typer.Option(
        "--at", help="A time (ISO 8601, e.g. 2026-11-26T06:00Z): which version was champion.")
    ] = None,
    model: ModelNameOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List alias changes (and refused attempts); --at T says which version served at T."""
    from rich.markup import escape

    from wxops.release.cycle import choose_model, read_history
    from wxops.release.history import champion_at, parse_time
    from wxops.terminal import show_table

    try:
        cfg, _ = _setup(config)
        name = choose_model(cfg, model)
        entries = read_history(cfg, name)
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
    show_table(f"alias history of '{name}'",
               ("#", "time (UTC)", "user", "action", "from", "to", "gate", "forced", "reason"), rows)


def register(app: typer.Typer) -> None:
    """Add ``verify``, ``promote``, ``rollback`` and ``history`` to the wxops app."""
    app.command("verify")(verify_cmd)
    app.command("promote")(promote_cmd)
    app.command("rollback")(rollback_cmd)
    app.command("history")(history_cmd)
