"""The probability report: reliability diagram, ROC, economic value and Brier skill by
season and hour of a probability model, as one HTML page with its PNG plots.

Written next to the deterministic verification report (``wxops-out/``) and logged to the
configuration's run, so a forecaster opens ``index.html`` from disk or the MLflow UI.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wxops.release.gate import GateResult
from wxops.verify.plots import _pyplot, _save
from wxops.verify.probabilistic import ProbabilityVerification


def plot_reliability(v: ProbabilityVerification, path: Path) -> Path:
    """Observed frequency vs forecast probability per bin, with the interval a reliable
    forecaster stays in and the number of cases per bin (sharpness) below."""
    plt = _pyplot()
    thresholds = list(v.reliability)
    fig, axes = plt.subplots(2, len(thresholds), figsize=(4.6 * len(thresholds), 6.4), dpi=110,
                             squeeze=False, gridspec_kw={"height_ratios": [3, 1]})
    for j, threshold in enumerate(thresholds):
        table = v.reliability[threshold]
        filled = table[table["n"] > 0]
        ax, hist = axes[0][j], axes[1][j]
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="perfect reliability")
        clim = float(v.scores.at[threshold, "climatology"])
        ax.axhline(clim, color="darkgrey", lw=0.8, ls="--", label="climatology")
        ax.vlines(filled["mean_forecast"], filled["low"], filled["high"], color="grey",
                  lw=5, alpha=0.35, label="range of a reliable forecaster (99 %)")
        ax.plot(filled["mean_forecast"], filled["observed_frequency"], marker="o", color="C0",
                label="observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"P({v.event} {threshold:g})")
        ax.set_xlabel("forecast probability")
        ax.set_ylabel("observed frequency")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
        hist.bar(table["bin_low"] + 0.05, table["n"], width=0.09, color="C0")
        hist.set_yscale("log")
        hist.set_xlim(0, 1)
        hist.set_ylabel("cases")
    fig.suptitle("Reliability diagram")
    return _save(fig, path)


def plot_roc(v: ProbabilityVerification, path: Path) -> Path:
    """ROC curve per threshold, with its area."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=110)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="no discrimination")
    for j, (threshold, roc) in enumerate(v.roc.items()):
        auc = float(v.scores.at[threshold, "auc"])
        ax.plot(roc["pofd"], roc["pod"], marker=".", color=f"C{j}",
                label=f"P({v.event} {threshold:g}), area {auc:.3f}")
    ax.set_xlabel("probability of false detection")
    ax.set_ylabel("probability of detection")
    ax.set_title("ROC")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_value(v: ProbabilityVerification, path: Path) -> Path:
    """Relative economic value per cost/loss ratio (best probability threshold)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for j, (threshold, value) in enumerate(v.value.items()):
        ax.plot(value["cost_loss_ratio"], value["value"], color=f"C{j}",
                label=f"P({v.event} {threshold:g})")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylim(-0.2, 1)
    ax.set_xlabel("cost/loss ratio of the user")
    ax.set_ylabel("relative economic value")
    ax.set_title("Value for a user acting at the best probability threshold")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_skill_by(v: ProbabilityVerification, path: Path, *, dimension: str) -> Path:
    """Brier skill score against climatology per group of ``dimension`` and threshold."""
    plt = _pyplot()
    frame = v.strata[dimension]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for j, (threshold, part) in enumerate(frame.groupby("threshold", sort=True)):
        ax.plot(part["group"].astype(str), part["bss"], marker="o", color=f"C{j}",
                label=f"P({v.event} {float(threshold):g})")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(dimension)
    ax.set_ylabel("Brier skill score vs climatology")
    ax.set_title(f"Brier skill by {dimension}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def _table(frame: pd.DataFrame) -> dict[str, Any]:
    """Columns and formatted rows for the template's ``table`` macro (escaped there)."""
    return {"columns": [str(c) for c in frame.columns],
            "rows": [[_fmt(v) for v in row] for row in frame.itertuples(index=False)]}


def write_probability_report(v: ProbabilityVerification, folder: Path, *, title: str,
                             gate: GateResult | None = None) -> Path:
    """Write ``index.html`` (``verify/templates/probability.html.j2``) and its plots into
    ``folder``; return the page's path."""
    from wxops.templating import render

    folder.mkdir(parents=True, exist_ok=True)
    plot_reliability(v, folder / "reliability.png")
    plot_roc(v, folder / "roc.png")
    plot_value(v, folder / "value.png")
    for dim in ("season", "hour"):
        plot_skill_by(v, folder / f"bss_by_{dim}.png", dimension=dim)
    scores = v.scores.rename_axis("threshold").reset_index()[
        ["threshold", "n", "events", "climatology", "brier", "brier_climatology", "bss", "auc",
         "reliability", "resolution", "uncertainty"]]
    gate_view = None
    if gate is not None:
        rows = pd.DataFrame([{"rule": r.rule, "status": r.status, "n": r.n, "events": r.events,
                              "p": r.p_value, "why": r.why} for r in gate.rows])
        gate_view = {"passed": gate.passed, "table": _table(rows)}
    strata = [{"file": f"bss_by_{dim}.png", "heading": f"Brier skill by {dim}",
               "table": _table(v.strata[dim])} for dim in ("season", "hour")]
    page = folder / "index.html"
    page.write_text(render("wxops.verify", "probability.html.j2", title=title,
                           scores=_table(scores), gate=gate_view, strata=strata,
                           overall=v.overall if len(v.scores) > 1 else None,
                           notes=v.notes), encoding="utf-8")
    return page
