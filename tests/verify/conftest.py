"""Tiny in-memory fixtures for the verification tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def tiny() -> tuple[np.ndarray, np.ndarray]:
    """Five visibility forecasts and observations (m), worked through by hand in the tests."""
    fcst = np.array([500.0, 2000.0, 800.0, 6000.0, 900.0])
    obs = np.array([700.0, 900.0, 3000.0, 6000.0, 950.0])
    return fcst, obs


@pytest.fixture
def hourly() -> pd.DataFrame:
    """Ten days of hourly observations with a daily cycle, plus three forecasts."""
    rng = np.random.default_rng(0)
    time = pd.date_range("2024-01-01", periods=240, freq="h", tz="UTC")
    obs = 8000 + 4000 * np.sin(2 * np.pi * time.hour / 24) + rng.normal(0, 500, len(time))
    return pd.DataFrame({
        "time": time, "y": obs,
        "good": obs + rng.normal(0, 300, len(time)),
        "bad": obs + rng.normal(0, 3000, len(time)),
    })
