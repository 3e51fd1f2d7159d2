"""Probabilistic verification: Brier skill, reliability, ROC, economic value, strata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wxops.errors import VerificationError
from wxops.verify.probabilistic import (
    brier_scores,
    calibration_test,
    climatological_frequency,
    consistency_interval,
    economic_value,
    reliability_table,
    roc_points,
    verify_probabilities,
)


def reliable(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.5, 2.0, n)
    return p, (rng.uniform(size=n) < p).astype(float)


def test_brier_skill_and_decomposition() -> None:
    p, e = reliable()
    s = brier_scores(p, e, climatology=float(e.mean()))
    assert s["bss"] > 0.1 and 0.7 < s["auc"] < 1
    assert s["n"] == 3000 and s["events"] == e.sum()
    # binned decomposition: BS ~ REL - RES + UNC (exact only for forecasts at bin means)
    assert s["brier"] == pytest.approx(s["reliability"] - s["resolution"] + s["uncertainty"],
                                       abs=0.005)
    assert s["reliability"] < 0.002
    # climatology itself has no skill; a perfect forecast has BSS 1
    assert brier_scores(np.full(10, 0.3), np.r_[np.ones(3), np.zeros(7)],
                        climatology=0.3)["bss"] == pytest.approx(0.0)
    assert brier_scores(e, e, climatology=0.3)["bss"] == pytest.approx(1.0)


def test_reliability_table_and_interval() -> None:
    p, e = reliable()
    table = reliability_table(p, e)
    assert table["n"].sum() == 3000 and len(table) == 10
    filled = table[table["n"] >= 30]
    inside = (filled["observed_frequency"] >= filled["low"]) & (
        filled["observed_frequency"] <= filled["high"])
    assert inside.all()
    low, high = consistency_interval(100, 0.5, alpha=0.05)
    assert 0.39 <= low < 0.5 < high <= 0.61


def test_roc_and_value_curves() -> None:
    p, e = reliable()
    roc = roc_points(p, e)
    assert roc["pod"].iloc[0] == 1.0 and roc["pod"].is_monotonic_decreasing
    value = economic_value(p, e)
    assert value["value"].max() > 0.2 and value["value"].max() <= 1


def test_verify_probabilities_stratified() -> None:
    p, e = reliable(2000)
    obs = np.where(e == 1, 400.0, 9000.0)
    obs[5] = np.nan
    times = pd.date_range("2021-01-01", periods=2000, freq="h", tz="UTC")
    v = verify_probabilities({1000.0: p, 5000.0: np.maximum(p, 0.2)}, obs,
                             climatology={1000.0: 0.2, 5000.0: 0.2}, valid_time=times)
    assert list(v.scores.index) == [1000.0, 5000.0]
    assert v.scores.at[1000.0, "n"] == 1999 and "1 rows" in v.notes[0]
    season = v.strata["season"]
    assert set(season["group"]) == {"DJF", "MAM"}
    assert season.groupby("threshold")["n"].sum().tolist() == [1999, 1999]
    assert len(v.strata["hour"]) == 48
    metrics = v.metrics()
    assert metrics["test_events_1000"] == e.sum() - e[5]
    line = v.summary("gbm-prob")[0]
    assert "BSS vs climatology" in line and "events=" in line and "n=1999" in line
    assert v.to_dict()["reliability"]["1000"][0]["n"] > 0


def test_bad_inputs() -> None:
    with pytest.raises(VerificationError, match=r"\[0, 1\]"):
        brier_scores([0.5, 1.5], [0, 1], climatology=0.5)
    with pytest.raises(VerificationError, match="0 or 1"):
        brier_scores([0.5, 0.5], [0, 2], climatology=0.5)
    with pytest.raises(VerificationError, match="shape"):
        brier_scores([0.5], [0, 1], climatology=0.5)
    with pytest.raises(VerificationError, match="climatological frequency for threshold 5000"):
        verify_probabilities({5000.0: [0.1]}, [100.0], climatology={},
                             valid_time=pd.date_range("2021", periods=1, tz="UTC"))
    with pytest.raises(VerificationError, match="no observation"):
        climatological_frequency([np.nan], [1000.0])
    assert climatological_frequency([100.0, 2000.0, 9000.0, 400.0], [1000.0, 5000.0]) == {
        1000.0: 0.5, 5000.0: 0.75}


def test_calibration_test_false_alarm_rate_and_power() -> None:
    """Reliable forecasts are rejected at about the nominal rate, whatever the season's
    event frequency; biased ones are rejected. 400 windows of 168 hours each."""
    rng = np.random.default_rng(7)
    rejected = {0.02: 0, 0.2: 0}
    for base, _ in rejected.items():
        for _ in range(400):
            p = np.clip(rng.beta(0.5, 0.5 / base - 0.5, 168), 0, 1)  # mean ~ base
            e = (rng.uniform(size=p.size) < p).astype(float)
            rejected[base] += calibration_test(p, e).p_value < 0.05
    # binomial(400, 0.05): mean 20, 99.9 % of outcomes in [7, 37]
    assert all(7 <= r <= 37 for r in rejected.values()), rejected
    p, e = reliable(168, seed=3)
    over = calibration_test(np.clip(0.2 + 1.2 * p, 0, 1), e)  # fog forecast far too often
    assert over.p_value < 1e-4 and over.z_events < 0 and over.forecast_events > 1.5 * over.events
    sharp = calibration_test(np.where(p > 0.2, 0.95, 0.01), e)  # unbiased count, too sharp
    assert sharp.p_value < 0.01 and sharp.z_brier > 0 and sharp.brier > sharp.expected_brier
    # persistent errors: counting autocorrelation makes the test more cautious
    runs = np.repeat(e[:28], 6)  # each outcome held for six hours
    prob = np.repeat(p[:28], 6)
    assert calibration_test(prob, runs, lag=12).p_value >= calibration_test(prob, runs).p_value


def test_calibration_test_bad_input() -> None:
    with pytest.raises(VerificationError, match="lag must be >= 0"):
        calibration_test([0.5, 0.5], [0, 1], lag=-1)
    with pytest.raises(VerificationError, match=r"\[0, 1\]"):
        calibration_test([0.5, 1.5], [0, 1])
    with pytest.raises(VerificationError, match="shape"):
        calibration_test([0.5], [0, 1])
    # categorical forecasts (0 or 1 only): z 0 when every case matched, infinite otherwise
    assert calibration_test([0.0, 1.0], [0, 1]).p_value == 1.0
    assert calibration_test([0.0, 1.0], [1, 1]).p_value == 0.0
