"""The verification report: one self-contained HTML page plus the PNG plots it shows.

The page is the Jinja2 template ``verify/templates/report.html.j2`` (autoescaped); this
module only turns scores into the rows it shows.

Written to a folder (then logged to the model version's run by the caller), so an
operator can open ``index.html`` from disk or from the MLflow UI's artifact view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from wxops.templating import render
from wxops.verify.evaluate import Verification
from wxops.verify.plots import (
    plot_error_by,
    plot_loss_curves,
    plot_performance_diagram,
    plot_scorecard,
)
from wxops.verify.score_table import COUNTS, names_of, score_names

Table = dict[str, list[Any]]
"""``{"columns": [...], "rows": [[cell, ...], ...]}``: what the template's table shows."""


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def _table(frame: pd.DataFrame) -> Table:
    frame = frame.reset_index()
    return {"columns": [str(c) for c in frame.columns],
            "rows": [[_fmt(v) for v in row.tolist()] for _, row in frame.iterrows()]}


def _event_table(frame: pd.DataFrame, label: str) -> Table:
    """A contingency table whose undefined scores say why, e.g. ``undefined: no
    forecasts of the event``, instead of a bare dash."""
    from wxops.verify.scoring import undefined_reason

    shown = frame.astype(object).copy()
    for source, row in frame.iterrows():
        counts = {k: row.get(f"{k}_{label}") for k in COUNTS}
        if any(v is None or v != v for v in counts.values()):
            continue
        for col in frame.columns:
            value = row[col]
            if isinstance(value, float) and math.isnan(value):
                why = undefined_reason(col, **{k: float(v) for k, v in counts.items()})
                if why is not None:
                    shown.loc[source, col] = f"undefined: {why}"
    return _table(shown.rename_axis("source"))


def _gate(passed: bool | None, rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    if passed is None:
        return None
    shown = []
    for r in rows:
        status = r["status"]
        shown.append({
            "rule": r["rule"], "status": status, "why": r.get("why", ""),
            "css": {"pass": "pass", "fail": "fail"}.get(status, "na"),
            "ci": (f"[{_fmt(r.get('ci_low'))}, {_fmt(r.get('ci_high'))}]"
                   if r.get("ci_low") is not None else "–"),
            **{k: _fmt(r.get(k)) for k in ("n", "events", "candidate", "reference", "skill",
                                           "effect", "p_value", "test")},
        })
    return {"passed": passed, "rows": shown}


def write_report(
    verification: Verification,
    out_dir: Path,
    *,
    title: str,
    meta: dict[str, str] | None = None,
    gate_passed: bool | None = None,
    gate_rows: Sequence[dict[str, Any]] = (),
    histories: dict[str, list[dict[str, float | None]]] | None = None,
    model_types: dict[str, str] | None = None,
    extra_sections: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write ``index.html`` and its PNG plots into ``out_dir``; return the HTML path.

    Args:
        verification: scores of the candidate, champion and references (test block).
        out_dir: folder for the report (created).
        title: page heading, e.g. ``visibility version 7``.
        meta: key facts shown at the top (model, version, data digest...).
        gate_passed, gate_rows: the gate verdict and one row per rule, if evaluated.
        histories: train/validation loss per epoch, for the loss-curve plot.
        model_types: configuration -> model type, naming the loss curves' steps.
        extra_sections: further tables (heading -> frame), e.g. the replay scores.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = verification.scores
    labels = [f"{t:g}" for t in verification.thresholds]
    plots: list[tuple[str, Path]] = [
        ("Scorecard", plot_scorecard(scores, out_dir / "scorecard.png",
                                     columns=score_names(verification.thresholds,
                                                         headline=True))),
        ("Error by hour of day", plot_error_by(verification.strata["hour"],
                                               out_dir / "error_by_hour.png", dimension="hour")),
        ("Performance diagram", plot_performance_diagram(
            scores, out_dir / "performance_diagram.png", thresholds=verification.thresholds)),
    ]
    if "lead_time" in verification.strata:
        plots.append(("Error by lead time", plot_error_by(
            verification.strata["lead_time"], out_dir / "error_by_lead_time.png",
            dimension="lead_time")))
    if histories:
        plots.append(("Loss curves", plot_loss_curves(histories, out_dir / "loss_curves.png",
                                                         types=model_types)))

    continuous = [c for c in ("n", *names_of("continuous")) if c in scores.columns]
    sections: list[dict[str, Any]] = [
        {"level": 2, "heading": f"Scores on the test block ({verification.n} forecasts)",
         "table": _table(scores[continuous].rename_axis("source"))}]
    event = "below" if verification.event == "below" else "at or above"
    for label in labels:
        cols = [f"{s}_{label}" for s in (*COUNTS, *names_of("categorical"))]
        sections.append({"level": 3, "heading": f"Events: {event} {label}",
                         "table": _event_table(scores[[c for c in cols if c in scores.columns]],
                                               label)})
    if not verification.skill.empty:
        sections.append({"level": 2, "heading": "Skill (1 - score / score of the reference)",
                         "table": _table(verification.skill)})
    for heading, frame in (extra_sections or {}).items():
        sections.append({"level": 2, "heading": heading, "table": _table(frame)})
    unit = {"hour": " (UTC)", "month": " (block month)"}
    for dim, frame in verification.strata.items():
        wide = frame.pivot(index="group", columns="source", values="rmse")
        wide.insert(0, "n", frame.groupby("group")["n"].first())
        name = dim.replace("_", " ") + unit.get(dim, "")
        sections.append({"level": 3, "heading": f"RMSE by {name}",
                         "table": _table(wide.rename_axis(dim))})
        for label in labels:
            if f"ets_{label}" not in frame.columns or dim not in ("season", "hour", "lead_time",
                                                                  "month"):
                continue
            ets = frame.pivot(index="group", columns="source", values=f"ets_{label}")
            ets.insert(0, "events", frame.groupby("group")[f"events_{label}"].first())
            ets.insert(0, "n", frame.groupby("group")["n"].first())
            sections.append({"level": 3, "heading": f"ETS {label} by {name}",
                             "table": _table(ets.rename_axis(dim))})
    text = render("wxops.verify", "report.html.j2", title=title,
                  meta={k: str(v) for k, v in (meta or {}).items()},
                  gate=_gate(gate_passed, gate_rows), sections=sections,
                  plots=[{"heading": h, "file": p.name} for h, p in plots],
                  notes=list(verification.notes))
    page = out_dir / "index.html"
    page.write_text(text, encoding="utf-8")
    return page
