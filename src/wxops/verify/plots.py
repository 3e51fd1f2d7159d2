"""Plots people would rather see than read (PNG, matplotlib's Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path


def plot_loss_curves(histories: dict[str, list[dict[str, float | None]]], path: Path) -> Path:
    """Train (dashed) and validation (solid) loss per epoch of each configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for i, (name, history) in enumerate(sorted(histories.items())):
        color = f"C{i % 10}"
        epochs = range(1, len(history) + 1)
        x = list(epochs)
        ax.plot(x, [_nan(h["train_loss"]) for h in history], ls="--", color=color, alpha=0.7,
                label=f"{name} train", marker="o" if len(x) == 1 else None)
        val = [_nan(h["val_loss"]) for h in history]
        if any(v == v for v in val):  # not all NaN
            ax.plot(x, val, ls="-", color=color, label=f"{name} validation",
                    marker="s" if len(x) == 1 else None)
    ax.axhline(1.0, color="grey", lw=0.8, ls=":", label="training mean (= 1)")
    ax.set_xlabel("epoch (boosting: stage / 2 %)")
    ax.set_ylabel("MSE / var(target)")
    ax.set_title("Loss curves per configuration")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
