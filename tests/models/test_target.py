"""A model on a log target: fitted on log(1 + y), predicting in the target's unit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from wxops.config import parse_config
from wxops.errors import ConfigError, TrainingError
from wxops.models.target import LogTargetRegressor


def test_log_target_fits_multiplicative_structure_and_predicts_in_metres():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 5, (400, 1))
    y = np.expm1(3 + 1.2 * x[:, 0])  # 20 m ... 8 km: linear only in log
    model = LogTargetRegressor(LinearRegression()).fit(x, y)
    np.testing.assert_allclose(model.predict(x), y, rtol=1e-6)
    assert model.regressor_.coef_[0] == pytest.approx(1.2)
    with pytest.raises(TrainingError, match="finite values >= 0"):
        LogTargetRegressor(LinearRegression()).fit(x, -y)


def test_config_target_transform():
    cfg = parse_config({"models": [{"name": "g", "type": "gradient_boosting",
                                    "target_transform": "log"}]})
    assert cfg.models[0].target_transform == "log"
    assert any(m.target_transform == "log" for m in parse_config({}).models)
    with pytest.raises(ConfigError, match="target_transform"):
        parse_config({"models": [{"name": "g", "type": "linear", "target_transform": "sqrt"}]})
