"""Is the candidate really better, or just lucky on this test block?

Hourly forecast errors are autocorrelated, so resampling single hours would overstate
the certainty. :func:`block_bootstrap_pvalue` resamples whole blocks of consecutive
hours (a moving-block bootstrap) of the loss differential, as the Diebold-Mariano test
does analytically.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wxops.errors import GateError


def block_bootstrap_pvalue(
    loss_candidate: Any,
    loss_reference: Any,
    *,
    block_length: int,
    n_samples: int = 1000,
    seed: int = 0,
) -> float:
    """One-sided p-value that the candidate's mean loss is *not* lower than the reference's.

    The loss differential ``d = loss_candidate - loss_reference`` (e.g. squared errors,
    in time order) is centred and resampled in moving blocks of ``block_length`` rows;
    the p-value is the share of resampled means at or below the observed mean. Small
    p (e.g. < 0.05): the candidate is significantly better; near 1: significantly worse.

    Args:
        loss_candidate, loss_reference: per-forecast losses on the same rows, time-ordered.
        block_length: rows per block (24 for a day of hourly forecasts).
        n_samples: bootstrap resamples.
        seed: random seed, so the gate's verdict is reproducible.
    """
    a = np.asarray(loss_candidate, dtype=float)
    b = np.asarray(loss_reference, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise GateError(f"losses must be 1-D of equal length, got {a.shape} and {b.shape}")
    d = a - b
    d = d[np.isfinite(d)]
    if d.size < 2:
        raise GateError("the bootstrap needs at least 2 paired losses")
    if block_length < 1:
        raise GateError(f"block_length must be >= 1, got {block_length}")
    if n_samples < 1:
        raise GateError(f"n_samples must be >= 1, got {n_samples}")
    block = min(block_length, d.size)
    observed = float(d.mean())
    centred = d - observed
    rng = np.random.default_rng(seed)
    n_blocks = int(np.ceil(d.size / block))
    starts = rng.integers(0, d.size - block + 1, size=(n_samples, n_blocks))
    index = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_samples, -1)
    means = centred[index[:, : d.size]].mean(axis=1)
    # Under H0 (no difference) the centred means are the null distribution of the mean.
    return float((np.sum(means <= observed) + 1) / (n_samples + 1))
