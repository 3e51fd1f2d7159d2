"""Power of the probability gate's Brier-skill-vs-climatology test by number of events.

Why ``gate.probability.min_events`` is 25: a calibrated forecaster with real skill
(events drawn from its own probabilities, so it is perfectly reliable) is compared with
the climatological frequency by the gate's one-sided Diebold-Mariano (HLN) test at
alpha = 0.05 over a test block of ``--n`` hourly cases. With few events the test rarely
finds skill that is there: the rule would decide by chance. Printed per number of events
and skill: the pass rate (the test's power) and the median Brier skill score.

    PYTHONPATH=src python benchmarks/bench_probability_gate_power.py [--sims 150]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from wxops.release.significance import dm_hln_test

EVENTS = (12, 25, 50, 100, 153)
SLOPES = (2.2, 2.8)
"""Logit slope of the latent predictor: the forecaster's sharpness (higher: more skill)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=150)
    parser.add_argument("--n", type=int, default=2206, help="cases (the reference test block)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.n
    print(f"{'events':>6} {'slope':>5} {'pass rate':>9} {'median BSS':>10}")
    for k in EVENTS:
        for slope in SLOPES:
            x0 = rng.normal(size=400_000)
            a = brentq(lambda a, s=slope, x=x0, f=k / n: float(expit(a + s * x).mean()) - f, -40, 10)
            passed, bss = 0, []
            for _ in range(args.sims):
                p = expit(a + slope * rng.normal(size=n))
                y = rng.random(n) < p
                loss, loss_clim = (p - y) ** 2, (k / n - y) ** 2
                passed += dm_hln_test(loss, loss_clim).p_value < 0.05
                bss.append(1 - loss.mean() / loss_clim.mean())
            print(f"{k:6d} {slope:5.1f} {passed / args.sims:9.2f} {np.median(bss):10.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
