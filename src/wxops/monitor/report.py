"""The status page: an HTML file with plots, built from the files a monitor run leaves.

The page is the Jinja2 template ``monitor/templates/status.html.j2`` (autoescaped).

Operators open ``wxops-out/monitor/report/index.html``: the verdict and its exit code,
every alert with its evidence, live scores over time against the promotion level (for a
probability version: Brier score and reliability per threshold), and drift per feature
against its threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wxops.errors import MonitorError
from wxops.templating import render
from wxops.verify.score_table import score_names

_VERDICT = {0: ("healthy", "#1a7f37"), 3: ("stale or missing data", "#9a6700"),
            4: ("input drift", "#bc4c00"), 5: ("live-score incident", "#cf222e")}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scores(scores: pd.DataFrame, promotion: dict[str, float], names: list[str], path: Path) -> Path:
    """Each live score over the window ends, with its promotion level as a dashed line."""
    plt = _plt()
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.6 * len(names)), dpi=100, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        if name in scores.columns:
            ax.plot(pd.to_datetime(scores.index), scores[name].astype(float), marker=".", label=f"live {name}")
        if name in promotion:
            ax.axhline(promotion[name], ls="--", color="grey", label="at promotion")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0, 0].set_title("Live scores per rolling window (window end)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_drift(drift: pd.DataFrame, path: Path) -> Path:
    """PSI per feature in the latest window, one bar per baseline, thresholds marked."""
    plt = _plt()
    latest = drift[drift["window_end"] == drift["window_end"].max()]
    features = sorted(latest["feature"].unique())
    fig, ax = plt.subplots(figsize=(9, 3.8), dpi=100)
    x = np.arange(len(features))
    for i, base in enumerate(("training", "observed")):
        part = latest[latest["baseline"] == base].set_index("feature").reindex(features)
        bars = ax.bar(x + (i - 0.5) * 0.4, part["psi"].astype(float), width=0.4, label=f"vs {base}")
        for xi, thr, br in zip(x, part["threshold"], part["breached"], strict=True):
            if pd.notna(thr):
                ax.plot([xi + (i - 0.5) * 0.4 - 0.2, xi + (i - 0.5) * 0.4 + 0.2], [thr, thr], color="black", lw=1)
            if br is True:
                ax.annotate("!", (xi + (i - 0.5) * 0.4, 0), color="red", ha="center", fontsize=12)
        del bars
    ax.set_xticks(x, features, rotation=30)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylabel("PSI (black: alert level)")
    ax.set_title("Input drift per feature, latest window")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _number(value: Any) -> str:
    """``0.1234`` -> ``"0.1234"``; an undefined score (None in JSON, NaN) -> ``"–"``."""
    if value is None or not np.isfinite(float(value)):
        return "–"
    return f"{float(value):.4g}"


def _thresholds(scores: pd.DataFrame) -> list[float]:
    """Event thresholds named by the ``hits_<t>`` columns of a score table."""
    return [float(c[5:]) for c in scores.columns if c.startswith("hits_")]


def write_status_page(out_dir: Path) -> Path:
    """Build ``report/index.html`` from ``status.json``, ``scores.csv`` and ``drift.csv``."""
    status_path = out_dir / "status.json"
    if not status_path.is_file():
        raise MonitorError(f"{status_path}: no monitor run yet; run `wxops monitor --observations FILE`")
    status = json.loads(status_path.read_text(encoding="utf-8"))
    scores = pd.read_csv(out_dir / "scores.csv", index_col="window_end", parse_dates=["window_end"])
    drift = pd.read_csv(out_dir / "drift.csv", parse_dates=["window_end"])
    page_dir = out_dir / "report"
    page_dir.mkdir(parents=True, exist_ok=True)
    # plots of the headline scores; the table lists every live score, in score-table order
    live = score_names(_thresholds(scores), live=True)
    names = [c for c in score_names(_thresholds(scores), live=True, headline=True)
             if c in scores.columns]
    if status.get("thresholds"):  # a probability version: Brier score and reliability
        # calibration_<t> is the test's z and expected_brier_<t> what reliable forecasts
        # score: in the table, not on the plot of scores against their promotion values
        live = [f"{n}_{t:g}" for n in ("brier", "expected_brier", "reliability", "calibration",
                                       "events") for t in status["thresholds"]]
        names = [c for c in live if c in scores.columns
                 and c.startswith(("brier_", "reliability_"))]
    shown = [c for c in live if c in status["latest_scores"]]
    images = []
    if names and not scores.empty:
        images.append(plot_scores(scores, status.get("promotion", {}), names, page_dir / "scores.png"))
    if not drift.empty:
        images.append(plot_drift(drift, page_dir / "drift.png"))
    code = int(status["exit_code"])
    verdict, colour = _VERDICT.get(code, ("unknown", "#57606a"))
    incident = status.get("incident")
    promotion = status.get("promotion", {})
    latest = [{"score": k, "live": _number(v), "promotion": _number(promotion.get(k))}
              for k, v in status["latest_scores"].items() if k in shown or k == "n"]
    page = render(
        "wxops.monitor", "status.html.j2", colour=colour, verdict=verdict, code=code,
        model=status["model"], version=status["version"], now=status["now"],
        kind=("probability model, thresholds " + ", ".join(
            f"{t:g}" for t in status["thresholds"])) if status.get("thresholds") else "",
        joined_total=status["joined_total"], joined_latest=status["joined_latest"],
        observation_age_h=status["observation_age_s"] / 3600,
        input_age_h=status["input_age_s"] / 3600, alerts=status["alerts"],
        incident=None if not incident else {
            "outcome": str(incident["outcome"]),
            "details": json.dumps(incident.get("details", {}), indent=2)},
        latest=latest, images=[{"file": p.name, "alt": p.stem} for p in images],
        notes=status.get("notes", []))
    index = page_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
