"""Probability models: one classifier per threshold, monotone, named columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_obs
from wxops import ConfigError, TrainingError
from wxops.config import FeaturesConfig, ProbabilityConfig, SplitConfig, parse_config
from wxops.features import build_features
from wxops.models.probability import (
    ThresholdProbabilityClassifier,
    monotone_probabilities,
    probability_column,
)
from wxops.models.train import train_model
from wxops.split import assign_blocks, split_by_blocks

DERIVED = ["dewpoint_depression", "wind_components", "cyclic_time"]


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    frame = assign_blocks(make_obs(120), SplitConfig())
    table = build_features(frame, FeaturesConfig())
    split = split_by_blocks(table.frame, SplitConfig(cycle=3))
    cfg = ProbabilityConfig(name="p", type="probability", thresholds=[5000, 1000], max_iter=30)
    seen: list[int] = []
    result = train_model(cfg, table, split, derived=DERIVED, seed=1,
                         on_epoch=lambda e, t, v: seen.append(e))
    return table, split, result, seen


def test_probabilities_are_named_monotone_and_skilful(trained) -> None:  # type: ignore[no-untyped-def]
    table, split, result, seen = trained
    prob = result.model.predict(split.test[table.inputs])
    assert list(prob.columns) == ["p_below_1000", "p_below_5000"]
    assert ((prob.to_numpy() >= 0) & (prob.to_numpy() <= 1)).all()
    assert (prob["p_below_1000"] <= prob["p_below_5000"]).all()
    # visibility depends on dew-point depression: better than the training frequency
    assert result.metrics["val_bss_5000"] > 0.1
    assert result.metrics["val_events_5000"] > 0
    assert set(result.metrics) >= {"train_brier_1000", "val_brier_1000", "val_bss_1000"}
    # loss curve on the regressors' scale: 1.0 = the training frequency
    assert len(seen) == len(result.history) >= 10
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] < 1.0
    assert result.params["model"] == "probability" and result.params["thresholds"] == [1000, 5000]


def test_monotone_by_cumulative_max() -> None:
    raw = np.array([[0.4, 0.2, 0.9], [0.1, 0.3, 0.2]])
    assert monotone_probabilities(raw).tolist() == [[0.4, 0.4, 0.9], [0.1, 0.3, 0.3]]
    assert monotone_probabilities(raw, "above").tolist() == [[0.4, 0.2, 0.2], [0.1, 0.1, 0.1]]
    assert probability_column(1000.0) == "p_below_1000"


def test_threshold_without_events_is_refused() -> None:
    x = pd.DataFrame({"a": np.arange(50.0)})
    with pytest.raises(TrainingError, match="no events below 10 "):
        ThresholdProbabilityClassifier(thresholds=(10.0,)).fit(x, np.full(50, 100.0))
    with pytest.raises(TrainingError, match="finite"):
        ThresholdProbabilityClassifier().fit(x, np.full(50, np.nan))


def test_config_rules() -> None:
    with pytest.raises(ConfigError, match="deterministic model"):
        parse_config({"models": [{"name": "p", "type": "probability"}]})
    with pytest.raises(ConfigError, match="target_transform"):
        parse_config({"models": [{"name": "g", "type": "linear"},
                                 {"name": "p", "type": "probability", "target_transform": "log"}]})
    with pytest.raises(ConfigError, match="at least one threshold"):
        parse_config({"models": [{"name": "g", "type": "linear"},
                                 {"name": "p", "type": "probability", "thresholds": []}]})
    default = parse_config({})
    assert any(m.type == "probability" for m in default.models)
