"""Target transforms: fit on a transformed target, predict in the target's own unit.

A regressor trained on the squared error of visibility in metres hedges: fog (100 m)
and a clear day (16 km) are so far apart that predicting a few km in doubtful cases
costs least, and no fog is ever forecast. On ``log(1 + visibility)`` a factor of two
costs the same at 200 m as at 8 km, so low values are worth fitting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone

from wxops.errors import TrainingError


class LogTargetRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Fit ``regressor`` on ``log1p(y)``; predict ``expm1`` of its prediction.

    Unlike scikit-learn's ``TransformedTargetRegressor`` it passes a validation target
    through the same transform (``y_val=``), which the PyTorch MLP uses for its loss curve.
    """

    def __init__(self, regressor: Any = None) -> None:
        self.regressor = regressor

    def fit(self, X: Any, y: Any, **fit_params: Any) -> LogTargetRegressor:
        target = np.asarray(y, dtype=float)
        if np.any(target < 0) or not np.all(np.isfinite(target)):
            raise TrainingError("a log target needs finite values >= 0 (e.g. visibility in m); "
                                "set target_transform: none for this target")
        if fit_params.get("y_val") is not None:
            fit_params["y_val"] = np.log1p(np.asarray(fit_params["y_val"], dtype=float))
        self.regressor_ = clone(self.regressor)
        self.regressor_.fit(X, np.log1p(target), **fit_params)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(np.expm1(self.regressor_.predict(X)), dtype=float)
