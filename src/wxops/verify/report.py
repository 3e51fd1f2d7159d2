"""The verification report: one self-contained HTML page plus the PNG plots it shows.

Written to a folder (then logged to the model version's run by the caller), so an
operator can open ``index.html`` from disk or from the MLflow UI's artifact view.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from wxops.verify.evaluate import Verification
from wxops.verify.plots import (
    plot_error_by,
    plot_loss_curves,
    plot_performance_diagram,
    plot_scorecard,
)
from wxops.verify.score_table import COUNTS, names_of, score_names

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2} td.l,th.l{text-align:left}
.pass{color:#06702b;font-weight:bold} .fail{color:#b00020;font-weight:bold}
.na{color:#888} img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame, *, index_label: str | Sequence[str] = "source") -> str:
    frame = frame.reset_index()
    head = "".join(f'<th class="l">{html.escape(str(c))}</th>' if i == 0 else
                   f"<th>{html.escape(str(c))}</th>" for i, c in enumerate(frame.columns))
    body = []
    for _, row in frame.iterrows():
        cells = "".join(f'<td class="l">{_fmt(v)}</td>' if i == 0 else f"<td>{_fmt(v)}</td>"
                        for i, v in enumerate(row.tolist()))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _event_table(frame: pd.DataFrame, label: str) -> str:
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


def _gate_html(passed: bool | None, rows: Sequence[dict[str, Any]]) -> str:
    if passed is None:
        return "<p class='na'>No gate evaluated for this report.</p>"
    verdict = "<span class='pass'>PASS</span>" if passed else "<span class='fail'>FAIL</span>"
    head = ("<tr><th class='l'>rule</th><th>n</th><th>events</th><th>candidate</th>"
            "<th>reference</th><th>skill</th><th>effect (cand. - ref.)</th><th>95 % CI</th>"
            "<th>p-value</th><th class='l'>test</th><th class='l'>result</th></tr>")
    body = []
    for r in rows:
        status = r["status"]
        css = {"pass": "pass", "fail": "fail"}.get(status, "na")
        ci = (f"[{_fmt(r.get('ci_low'))}, {_fmt(r.get('ci_high'))}]"
              if r.get("ci_low") is not None else "–")
        body.append(
            f"<tr><td class='l'>{html.escape(r['rule'])}</td><td>{_fmt(r.get('n'))}</td>"
            f"<td>{_fmt(r.get('events'))}</td><td>{_fmt(r.get('candidate'))}</td>"
            f"<td>{_fmt(r.get('reference'))}</td><td>{_fmt(r.get('skill'))}</td>"
            f"<td>{_fmt(r.get('effect'))}</td><td>{ci}</td><td>{_fmt(r.get('p_value'))}</td>"
            f"<td class='l'>{_fmt(r.get('test'))}</td>"
            f"<td class='l {css}'>{html.escape(status)}: {html.escape(r.get('why', ''))}</td></tr>"
        )
    return f"<p id='gate-verdict'>Gate: {verdict}</p><table id='gate'>{head}{''.join(body)}</table>"


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
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if meta:
        parts.append("<table id='meta'>" + "".join(
            f"<tr><th class='l'>{html.escape(k)}</th><td class='l'>{html.escape(str(v))}</td></tr>"
            for k, v in meta.items()) + "</table>")
    parts += ["<h2>Quality gate</h2>", _gate_html(gate_passed, gate_rows),
              f"<h2>Scores on the test block ({verification.n} forecasts)</h2>",
              _table(scores[continuous].rename_axis("source"))]
    for label in labels:
        cols = [f"{s}_{label}" for s in (*COUNTS, *names_of("categorical"))]
        event = "below" if verification.event == "below" else "at or above"
        parts += [f"<h3>Events: {event} {label}</h3>",
                  _event_table(scores[[c for c in cols if c in scores.columns]], label)]
    if not verification.skill.empty:
        parts += ["<h2>Skill (1 - score / score of the reference)</h2>",
                  _table(verification.skill)]
    for heading, frame in (extra_sections or {}).items():
        parts += [f"<h2>{html.escape(heading)}</h2>", _table(frame)]
    unit = {"hour": " (UTC)", "month": " (block month)"}
    for dim, frame in verification.strata.items():
        wide = frame.pivot(index="group", columns="source", values="rmse")
        wide.insert(0, "n", frame.groupby("group")["n"].first())
        name = html.escape(dim.replace("_", " ")) + unit.get(dim, "")
        parts += [f"<h3>RMSE by {name}</h3>", _table(wide.rename_axis(dim))]
        for label in labels:
            if f"ets_{label}" not in frame.columns or dim not in ("season", "hour", "lead_time",
                                                                  "month"):
                continue
            ets = frame.pivot(index="group", columns="source", values=f"ets_{label}")
            ets.insert(0, "events", frame.groupby("group")[f"events_{label}"].first())
            ets.insert(0, "n", frame.groupby("group")["n"].first())
            parts += [f"<h3>ETS {label} by {name}</h3>", _table(ets.rename_axis(dim))]
    for heading, path in plots:
        parts.append(f"<h2>{html.escape(heading)}</h2><img src='{path.name}' "
                     f"alt='{html.escape(heading)}' onload=\"this.dataset.ok='1'\" "
                     "onerror=\"this.dataset.ok='0';this.insertAdjacentHTML('afterend',"
                     "'<p class=fail>plot missing: '+this.getAttribute('src')+'</p>')\">")
    if verification.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(
            f"<li>{html.escape(n)}</li>" for n in verification.notes) + "</ul>")
    parts.append("</body></html>")
    page = out_dir / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    return page
