"""The gate's reference rules on validation choose the configuration, not the loss."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.release.test_release_units import _foggy
from wxops.config import parse_config
from wxops.release import select_configuration


def _split():
    t, obs, persistence, rng = _foggy(seed=2)
    half = len(t) // 2
    frame = pd.DataFrame({"time": t - pd.Timedelta(hours=3), "y": obs,
                          "visibility": persistence})
    return frame.iloc[:half].reset_index(drop=True), frame.iloc[half:].reset_index(drop=True), rng


def test_a_fog_detecting_configuration_beats_a_better_rmse_that_never_forecasts_fog():
    train, val, rng = _split()
    y = val["y"].to_numpy()
    predictions = {"blind": np.clip(y, 4000, None) + rng.normal(0, 200, len(y)),
                   "sees-fog": y + rng.normal(0, 600, len(y))}
    metrics = {"blind": {"val_rmse": 100.0}, "sees-fog": {"val_rmse": 600.0}}
    cfg = parse_config({"features": {"lead_time": 3}})
    chosen = select_configuration(cfg, predictions, metrics, train=train, validation=val)
    assert chosen.best == "sees-fog", chosen.message
    assert "passing the gate's reference rules on validation" in chosen.message
    assert "ets_1000 vs persistence: skill > 0" in chosen.verdicts["blind"].failed_rules
    assert chosen.scores["sees-fog"]["val_ets_1000"] > chosen.scores["blind"]["val_ets_1000"]


def test_the_run_says_plainly_when_no_configuration_beats_persistence_on_fog():
    train, val, _rng = _split()
    y = val["y"].to_numpy()
    predictions = {"a": np.clip(y, 4000, None), "b": np.clip(y, 6000, None)}
    metrics = {"a": {"val_rmse": 2.0}, "b": {"val_rmse": 1.0}}
    cfg = parse_config({"features": {"lead_time": 3}})
    chosen = select_configuration(cfg, predictions, metrics, train=train, validation=val)
    assert chosen.best in ("a", "b")
    assert "No configuration beats persistence on ets_1000" in chosen.message
    # without reference rules the selection metric decides
    none = cfg.model_copy(update={"gate": cfg.gate.model_copy(update={"rules": []})})
    assert select_configuration(none, predictions, metrics, train=train,
                                validation=val).best == "b"
