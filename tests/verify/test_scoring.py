"""Golden tests: every score against a value computed by hand on a tiny array."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wxops.errors import VerificationError
from wxops.verify import brier, categorical_scores, continuous_scores, crps_of_quantiles, skill
from wxops.verify.scoring import worse_by_pct


def test_continuous_scores_match_hand_values(tiny):
    fcst, obs = tiny
    # errors: -200, 1100, -2200, 0, -50
    got = continuous_scores(fcst, obs)
    assert got["mae"] == pytest.approx((200 + 1100 + 2200 + 0 + 50) / 5)  # 710
    assert got["rmse"] == pytest.approx(math.sqrt((200**2 + 1100**2 + 2200**2 + 50**2) / 5))
    assert got["bias"] == pytest.approx((-200 + 1100 - 2200 + 0 - 50) / 5)  # -270
    fm, om = fcst.mean(), obs.mean()
    cov = ((fcst - fm) * (obs - om)).sum()
    r = cov / math.sqrt(((fcst - fm) ** 2).sum() * ((obs - om) ** 2).sum())
    assert got["correlation"] == pytest.approx(r)
    assert got["n"] == 5


def test_missing_pairs_are_left_out(tiny):
    fcst, obs = tiny
    fcst = fcst.copy()
    fcst[1] = np.nan
    got = continuous_scores(fcst, obs)
    assert got["n"] == 4
    assert got["mae"] == pytest.approx((200 + 2200 + 0 + 50) / 4)


def test_categorical_scores_match_hand_contingency_table(tiny):
    fcst, obs = tiny
    # event: visibility < 1000 m. forecast yes: rows 0, 2, 4; observed yes: rows 0, 1, 4
    # hits 2 (rows 0, 4), misses 1 (row 1), false alarms 1 (row 2), correct negatives 1
    got = categorical_scores(fcst, obs, thresholds=[1000.0])
    assert (got["hits_1000"], got["misses_1000"]) == (2, 1)
    assert (got["false_alarms_1000"], got["correct_negatives_1000"]) == (1, 1)
    assert got["pod_1000"] == pytest.approx(2 / 3)
    assert got["far_1000"] == pytest.approx(1 / 3)
    assert got["csi_1000"] == pytest.approx(2 / 4)
    random_hits = (2 + 1) * (2 + 1) / 5
    assert got["ets_1000"] == pytest.approx((2 - random_hits) / (2 + 1 + 1 - random_hits))
    assert got["frequency_bias_1000"] == pytest.approx(3 / 3)


def test_categorical_event_above_and_second_threshold(tiny):
    fcst, obs = tiny
    # event: visibility >= 5000: forecast yes row 3, observed yes row 3 -> 1 hit, 4 CN
    got = categorical_scores(fcst, obs, thresholds=[5000.0], event="above")
    assert got["hits_5000"] == 1 and got["correct_negatives_5000"] == 4
    assert got["pod_5000"] == 1.0 and got["far_5000"] == 0.0
    below = categorical_scores(fcst, obs, thresholds=[1000.0, 5000.0])
    # < 5000: forecast yes rows 0,1,2,4; observed yes rows 0,1,2,4 -> 4 hits, 1 CN
    assert below["hits_5000"] == 4 and below["csi_5000"] == 1.0


@pytest.mark.parametrize("event", ["below", "above"])
def test_contingency_from_counts_scores_as_the_event_tables_of_scores(event: str) -> None:
    """The counts handed to ``scores`` give every score its ``ThresholdEventOperator``
    tables give, thresholds with no event (NaN scores) and ties on the threshold included."""
    import xarray as xr
    from scores.categorical import ThresholdEventOperator

    from wxops.verify.score_table import scores_of
    from wxops.verify.scoring import contingency_manager, event_operator

    rng = np.random.default_rng(3)
    obs = rng.choice([0.0, 0.0005, 200.0, 1000.0, 3000.0, 5000.0, 16000.0], size=400)
    fcst = np.where(rng.random(400) < 0.7, obs, rng.uniform(0, 20000, 400))
    op = event_operator(event)
    levels = [0.0, 1.0, 1000.0, 5000.0, 1e6]
    tables = contingency_manager(fcst, obs, levels, op)
    for i, threshold in enumerate(levels):
        ours = tables  # one table per threshold: its row i is this threshold
        theirs = ThresholdEventOperator(default_event_threshold=threshold, default_op_fn=op) \
            .make_contingency_manager(xr.DataArray(fcst, dims="time"), xr.DataArray(obs, dims="time"))
        for key, count in theirs.get_counts().items():
            assert float(ours.get_counts()[key][i]) == float(count), (threshold, key)
        for score in scores_of("categorical", source="contingency"):
            np.testing.assert_equal(float(getattr(ours, score.function)()[i]),
                                    float(getattr(theirs, score.function)()), err_msg=f"{score.name} {threshold}")


def test_crps_and_brier_match_hand_values():
    # members {1, 2, 3}, obs 2: CRPS = mean|x - y| - 0.5 mean|x - x'| = 2/3 - 0.5 * 8/9
    assert crps_of_quantiles([[1.0, 2.0, 3.0]], [2.0]) == pytest.approx(2 / 3 - 4 / 9)
    # ((0.2 - 0)^2 + (0.9 - 1)^2) / 2
    assert brier([0.2, 0.9], [0.0, 1.0]) == pytest.approx((0.04 + 0.01) / 2)


def test_skill_formula():
    assert skill("rmse", 50.0, 100.0) == pytest.approx(0.5)
    assert skill("ets_1000", 0.4, 0.2) == pytest.approx((0.4 - 0.2) / (1 - 0.2))
    assert skill("bias", 1.0, 2.0) is None
    assert skill("rmse", 1.0, 0.0) is None
    assert worse_by_pct("rmse", 110.0, 100.0) == pytest.approx(10.0)
    assert worse_by_pct("ets_1000", 0.18, 0.2) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: continuous_scores([1.0, 2.0], [1.0]), "equal length"),
        (lambda: continuous_scores([np.nan], [1.0]), "no pair of finite"),
        (lambda: categorical_scores([1.0], [1.0], thresholds=[1.0], event="sideways"),
         "event must be"),
        (lambda: crps_of_quantiles([1.0, 2.0], [1.0]), "n_times, n_quantiles"),
        (lambda: brier([1.5], [1.0]), r"lie in \[0, 1\]"),
        (lambda: brier([0.5], [2.0]), "must be 0 or 1"),
        (lambda: brier([0.5, 0.1], [1.0]), "differ in shape"),
    ],
)
def test_bad_input_is_refused(call, match):
    with pytest.raises(VerificationError, match=match):
        call()


def test_scores_package_is_pinned():
    import scores

    assert scores.__version__ == "2.7.0"
