"""Verification: scores (through the ``scores`` package), references, strata, report.

Names load on first use, so ``wxops --help`` and other commands stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_EXPORTS: dict[str, str] = {
    "Climatology": "wxops.verify.references",
    "Verification": "wxops.verify.evaluate",
    "brier": "wxops.verify.scoring",
    "categorical_scores": "wxops.verify.scoring",
    "continuous_scores": "wxops.verify.scoring",
    "crps_of_quantiles": "wxops.verify.scoring",
    "fit_climatology": "wxops.verify.references",
    "nwp_forecast": "wxops.verify.references",
    "persistence_forecast": "wxops.verify.references",
    "skill": "wxops.verify.scoring",
    "verify_forecasts": "wxops.verify.evaluate",
    "write_report": "wxops.verify.report",
}

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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
