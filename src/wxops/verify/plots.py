"""Plots people would rather see than read (PNG, matplotlib's Agg backend, no display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def plot_loss_curves(histories: dict[str, list[dict[str, float | None]]], path: Path, *,
                     types: dict[str, str] | None = None) -> Path:
    """Train (dashed) and validation (solid) loss per step of each configuration.

    ``types`` (configuration -> model type) names each curve's step on the x-axis from
    the model-type registry (epoch, boosting stage...); unknown: "step".
    """
    from wxops.models.types import MODEL_TYPES

    axes = {name: MODEL_TYPES[t].loss_axis for name, t in (types or {}).items()
            if t in MODEL_TYPES}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for i, (name, history) in enumerate(sorted(histories.items())):
        color = f"C{i % 10}"
        epochs = range(1, len(history) + 1)
        x = list(epochs)
        train = np.array([h["train_loss"] for h in history], dtype=float)
        ax.plot(x, train, ls="--", color=color, alpha=0.7,
                label=f"{name} train" + (f" [{axes[name]}]" if name in axes else ""),
                marker="o" if len(x) == 1 else None)
        val = np.array([np.nan if h["val_loss"] is None else h["val_loss"] for h in history],
                       dtype=float)
        if np.isfinite(val).any():
            ax.plot(x, val, ls="-", color=color, label=f"{name} validation",
                    marker="s" if len(x) == 1 else None)
    ax.axhline(1.0, color="grey", lw=0.8, ls=":", label="training mean (= 1)")
    steps = sorted({axes.get(name, "step") for name in histories})
    ax.set_xlabel(" / ".join(steps))
    ax.set_ylabel("MSE / var(target)")
    ax.set_title("Loss curves per configuration")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def plot_scorecard(scores: pd.DataFrame, path: Path, *, columns: Sequence[str]) -> Path:
    """Bars of each score (one panel each) for every forecast source, side by side."""
    plt = _pyplot()
    cols = [c for c in columns if c in scores.columns]
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 3.6), dpi=110, squeeze=False)
    for ax, col in zip(axes[0], cols, strict=True):
        values = scores[col].astype(float)
        colors = [f"C{i % 10}" for i in range(len(values))]
        ax.bar(range(len(values)), values.fillna(0.0), color=colors)
        ax.set_xticks(range(len(values)), list(values.index), rotation=35, ha="right", fontsize=8)
        ax.set_title(col)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Scorecard: candidate vs champion and reference forecasts")
    return _save(fig, path)


def plot_error_by(strata: pd.DataFrame, path: Path, *, dimension: str, score: str = "rmse") -> Path:
    """``score`` of each source per group of ``dimension`` (hour of day, lead time...)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for i, (source, part) in enumerate(strata.groupby("source", sort=False)):
        part = part.sort_values("group")
        ax.plot(part["group"].astype(str), part[score], marker="o", color=f"C{i % 10}",
                label=source)
    ax.set_xlabel(dimension.replace("_", " "))
    ax.set_ylabel(score)
    ax.set_title(f"{score} by {dimension.replace('_', ' ')}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_performance_diagram(
    scores: pd.DataFrame, path: Path, *, thresholds: Sequence[float]
) -> Path:
    """Roebber's performance diagram: success ratio (1 - FAR) vs POD, CSI and bias lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=110)
    sr, pod = np.meshgrid(np.linspace(0.01, 1, 100), np.linspace(0.01, 1, 100))
    csi = 1.0 / (1.0 / sr + 1.0 / pod - 1.0)
    lines = ax.contour(sr, pod, csi, levels=np.arange(0.1, 1.0, 0.1), colors="grey",
                       linewidths=0.6)
    ax.clabel(lines, fmt="%.1f", fontsize=7)
    for b in (0.25, 0.5, 1.0, 2.0, 4.0):
        x = np.linspace(0, 1, 50)
        ax.plot(x, b * x, ls="--", color="darkgrey", lw=0.8)
        # frequency bias = POD / SR: label each line where it leaves the square
        lx, ly = (1.0, b) if b <= 1 else (1.0 / b, 1.0)
        ax.annotate(f"bias {b:g}", (lx, ly), xytext=(-2, -2), textcoords="offset points",
                    ha="right", va="top", fontsize=7, color="dimgrey")
    markers = "osD^v<>"
    for j, threshold in enumerate(thresholds):
        label = f"{threshold:g}"
        for i, source in enumerate(scores.index):
            far = scores.at[source, f"far_{label}"] if f"far_{label}" in scores.columns else np.nan
            p = scores.at[source, f"pod_{label}"] if f"pod_{label}" in scores.columns else np.nan
            if np.isfinite(far) and np.isfinite(p):
                ax.plot(1 - far, p, marker=markers[j % len(markers)], color=f"C{i % 10}",
                        ls="none", ms=8, label=f"{source} @ {label}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("success ratio (1 - FAR)")
    ax.set_ylabel("probability of detection")
    ax.set_title("Performance diagram (CSI contours, dashed: frequency bias)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no event forecast or observed", ha="center", color="grey")
    return _save(fig, path)
