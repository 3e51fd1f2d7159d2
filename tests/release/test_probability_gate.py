"""The probability gate: a reliable forecaster passes, a miscalibrated one is rejected."""

from __future__ import annotations

import numpy as np
import pytest

from wxops.config import ProbabilityGateConfig
from wxops.errors import GateError
from wxops.release.probability_gate import evaluate_probability_gate, reliability_verdict

CFG = ProbabilityGateConfig()


def synthetic(n: int = 3000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of fog and observed visibility drawn from exactly those probabilities."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 3.0, n)
    fog = rng.uniform(size=n) < p
    return p, np.where(fog, 400.0, 9000.0)


def test_reliable_passes_and_miscalibrated_fails_by_reliability() -> None:
    p, obs = synthetic()
    clim = {1000.0: float(np.mean(obs < 1000))}
    good = evaluate_probability_gate({1000.0: p}, obs, climatology=clim, cfg=CFG)
    assert good.passed, [r.why for r in good.rows]
    statuses = {r.score: r.status for r in good.rows}
    assert statuses == {"bss_1000": "pass", "brier_1000": "skipped", "reliability_1000": "pass"}
    # overconfident: the same ranking (so still skilful) but probabilities stretched
    bad = evaluate_probability_gate({1000.0: np.clip(1.6 * p, 0, 1)}, obs, climatology=clim,
                                    cfg=CFG)
    assert not bad.passed
    assert bad.failed_rules == ["reliability_1000: no bin off the diagonal"]
    why = next(r.why for r in bad.rows if r.status == "fail")
    assert "off the diagonal" in why and "outside" in why


def test_reliability_false_alarm_rate_is_at_most_alpha() -> None:
    # 100 reliable forecasters, alpha 0.05: rejections ~ Binomial(100, <= 0.05)
    rejected = 0
    for seed in range(100):
        rng = np.random.default_rng(100 + seed)
        p = rng.uniform(size=600)
        e = (rng.uniform(size=600) < p).astype(float)
        ok, _, _ = reliability_verdict(p, e, alpha=0.05, min_cases=30)
        rejected += not ok
    assert rejected <= 11  # P(X > 11) < 0.5 % for X ~ Binomial(100, 0.05)


def test_champion_and_too_few_events() -> None:
    p, obs = synthetic()
    clim = {1000.0: float(np.mean(obs < 1000))}
    worse = evaluate_probability_gate({1000.0: np.full_like(p, clim[1000.0])}, obs,
                                      climatology=clim, cfg=CFG, champion={1000.0: p})
    rows = {r.score: r for r in worse.rows}
    assert rows["brier_1000"].status == "fail" and rows["bss_1000"].status == "fail"
    few = evaluate_probability_gate({1000.0: p[:40]}, np.full(40, 9000.0), climatology=clim,
                                    cfg=CFG)
    assert few.passed and {r.status for r in few.rows} == {"too few events", "skipped"}
    assert "too few events (n=0 < 25" in few.rows[0].why


def test_bad_inputs() -> None:
    with pytest.raises(GateError, match="no probability"):
        evaluate_probability_gate({}, [1.0], climatology={}, cfg=CFG)
    with pytest.raises(GateError, match="climatological frequency"):
        evaluate_probability_gate({1000.0: [0.1]}, [1.0], climatology={}, cfg=CFG)
    with pytest.raises(GateError, match="shape"):
        evaluate_probability_gate({1000.0: [0.1, 0.2]}, [1.0], climatology={1000.0: 0.1},
                                  cfg=CFG)
