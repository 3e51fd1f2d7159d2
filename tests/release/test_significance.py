"""Significance tests of the gate: calibrated when errors persist, clear on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from wxops.errors import GateError
from wxops.release import block_bootstrap_test, dm_hln_test
from wxops.release.significance import bootstrap_difference, politis_white_length


def _ar1(rng: np.random.Generator, phi: float, n: int) -> np.ndarray:
    return np.asarray(lfilter([1.0], [1.0, -phi], rng.normal(size=n + 300)))[300:]


def test_block_length_follows_the_persistence_of_the_series():
    rng = np.random.default_rng(3)
    short = politis_white_length(_ar1(rng, 0.2, 2000))
    long = politis_white_length(_ar1(rng, 0.97, 2000))
    assert 4 * short < long
    assert politis_white_length(np.ones(100)) == 1  # nothing to preserve
    assert politis_white_length(_ar1(rng, 0.999, 30)) <= 10  # at most a third of the series


def test_dm_hln_separates_better_worse_and_equal_and_reports_effect_and_interval():
    rng = np.random.default_rng(1)
    ref = _ar1(rng, 0.8, 1500) ** 2
    better = dm_hln_test(0.6 * ref, ref, lead_time=3)
    assert better.test == "dm-hln" and better.p_value < 0.01 and better.lag >= 3
    assert better.effect < 0 and better.ci_low < better.effect < better.ci_high < 0
    assert better.n == 1500
    worse = dm_hln_test(1.5 * ref, ref)
    assert worse.p_value > 0.99 and worse.ci_low > 0
    same = dm_hln_test(_ar1(rng, 0.8, 1500) ** 2, ref)
    assert 0.01 < same.p_value < 0.99 and same.ci_low < 0 < same.ci_high
    with pytest.raises(GateError, match="equal length"):
        dm_hln_test(ref, ref[:-1])
    with pytest.raises(GateError, match="at least 8 paired losses"):
        dm_hln_test([1.0, np.nan, 2.0], [0.5, 1.0, 1.0])


def test_false_alarm_rate_stays_near_alpha_when_errors_persist():
    """Equal-skill forecasts with AR(1) errors (phi 0.9): at alpha 0.05 each test rejects
    4-5 % of 400 simulations in expectation (benchmarks/bench_gate_calibration.py measures
    it with 1000 simulations at phi 0.5-0.97); a fixed 24 h bootstrap would not."""
    rng = np.random.default_rng(11)
    sims, n = 300, 720
    dm = boot = 0
    for s in range(sims):
        a, b = _ar1(rng, 0.9, n) ** 2, _ar1(rng, 0.9, n) ** 2
        dm += dm_hln_test(a, b, lead_time=3).p_value < 0.05
        boot += block_bootstrap_test(a, b, n_samples=199, seed=s).p_value < 0.05
    # binomial 99.9 % band around 0.05 for 300 draws: about 0.013-0.10
    assert 0.01 <= dm / sims <= 0.10, dm / sims
    assert 0.01 <= boot / sims <= 0.10, boot / sims


def test_bootstrap_difference_of_a_categorical_score():
    rng = np.random.default_rng(5)
    n = 1200
    obs = (_ar1(rng, 0.95, n) > 1.5).astype(float)  # persistent events

    def hit_rate(f: np.ndarray):
        def stat(index: np.ndarray) -> np.ndarray:
            o, p = obs[index], f[index]
            return (o * p).sum(axis=1) / np.maximum(o.sum(axis=1), 1)
        return stat

    perfect, blind = obs.copy(), np.zeros(n)
    p, lo, hi, block = bootstrap_difference(
        lambda i: hit_rate(perfect)(i) - hit_rate(blind)(i), n, dependence=obs,
        n_samples=300)
    assert p < 0.01 and 0 < lo <= hi and block > 1
    with pytest.raises(GateError, match="at least 8 rows"):
        bootstrap_difference(lambda i: i.sum(axis=1), 3, dependence=np.ones(3))
