"""Verification: scores (through the ``scores`` package), references, strata, report."""

from wxops.verify.evaluate import Verification, verify_forecasts
from wxops.verify.references import (
    Climatology,
    fit_climatology,
    nwp_forecast,
    persistence_forecast,
)
from wxops.verify.report import write_report
from wxops.verify.scoring import (
    brier,
    categorical_scores,
    continuous_scores,
    crps_of_quantiles,
    skill,
)

__all__ = [
    "Climatology",
    "Verification",
    "brier",
    "categorical_scores",
    "continuous_scores",
    "crps_of_quantiles",
    "fit_climatology",
    "nwp_forecast",
    "persistence_forecast",
    "skill",
    "verify_forecasts",
    "write_report",
]
