"""Probability of the target below (or above) each threshold: one classifier per threshold.

Aviation forecasters want P(visibility < 1000 m), not a visibility with an RMSE. The
estimator fits a histogram gradient-boosting classifier on the event indicator of every
threshold and returns the probabilities as a named data frame (``p_below_1000``...), so
the logged MLflow model, ``wxops serve`` and the verification all see the same columns.

The classifiers are fitted independently, so their probabilities may cross; for events
below a threshold P(< t1) <= P(< t2) when t1 < t2 is restored by a cumulative maximum
over increasing thresholds (minimum for events above), which never moves a monotone
forecast and changes a crossing one as little as possible towards the larger value.

Loss curves share the scale of the regressors: the Brier score of each threshold divided
by the Brier score of the training event frequency (the variance of the 0/1 target), so
1.0 is "always forecast the training frequency", averaged over the thresholds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from wxops.errors import TrainingError


def probability_column(threshold: float, event: str = "below") -> str:
    """``1000.0`` -> ``p_below_1000``: the name of a probability column."""
    return f"p_{event}_{threshold:g}"


def monotone_probabilities(prob: np.ndarray, event: str = "below") -> np.ndarray:
    """Make ``prob`` (rows x increasing thresholds) monotone across thresholds.

    ``below``: non-decreasing (cumulative maximum); ``above``: non-increasing.
    """
    p = np.clip(np.asarray(prob, dtype=float), 0.0, 1.0)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be rows x thresholds, got shape {p.shape}")
    if event == "below":
        return np.maximum.accumulate(p, axis=1)
    return np.minimum.accumulate(p, axis=1)


class ThresholdProbabilityModel(BaseEstimator):  # type: ignore[misc]
    """What every probability model shares: its thresholds, event and named columns.

    After ``fit``: ``thresholds_`` (sorted), ``columns_`` (``p_below_1000``...), ``event``
    and ``base_rates_`` (training event frequency per threshold), which training,
    verification and the pipeline read; ``predict`` returns the named data frame of
    :meth:`predict_proba_array`, which subclasses implement.
    """

    thresholds: tuple[float, ...]
    event: str

    def _events(self, y: Any) -> np.ndarray:
        target = np.asarray(y, dtype=float).reshape(-1, 1)
        t = np.asarray(self.thresholds_, dtype=float).reshape(1, -1)
        return (target < t) if self.event == "below" else (target >= t)

    def _prepare(self, y: Any) -> np.ndarray:
        """Check the settings and the target, set ``thresholds_``, ``columns_`` and
        ``base_rates_``; return the 0/1 events (rows x thresholds)."""
        if self.event not in ("below", "above"):
            raise TrainingError(f"event must be 'below' or 'above', got {self.event!r}")
        if not self.thresholds:
            raise TrainingError("a probability model needs at least one threshold")
        if not all(np.isfinite(float(t)) for t in self.thresholds):
            raise TrainingError(f"thresholds must be finite numbers, got {list(self.thresholds)}")
        target = np.asarray(y, dtype=float)
        if target.ndim != 1 or len(target) == 0 or not np.isfinite(target).all():
            raise TrainingError("the target must be a non-empty 1-D array of finite values")
        self.thresholds_ = sorted(float(t) for t in set(self.thresholds))
        events = self._events(target)
        for j, threshold in enumerate(self.thresholds_):
            count = int(events[:, j].sum())
            if count == 0 or count == len(target):
                what = "no" if count == 0 else "only"
                raise TrainingError(
                    f"the training rows hold {what} events {self.event} {threshold:g} "
                    f"({count} of {len(target)}); choose thresholds that occur in the "
                    "training data (verify.thresholds or the model's thresholds)")
        self.base_rates_: list[float] = [float(r) for r in events.mean(0)]
        self.columns_ = [probability_column(t, self.event) for t in self.thresholds_]
        return events

    def predict_proba_array(self, X: Any) -> np.ndarray:
        """Monotone event probabilities, rows x thresholds (increasing)."""
        raise NotImplementedError

    def predict(self, X: Any) -> pd.DataFrame:
        """Probabilities as a data frame with one named column per threshold."""
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(self.predict_proba_array(X), columns=self.columns_, index=index)


class ThresholdProbabilityClassifier(ThresholdProbabilityModel):
    """One gradient-boosting classifier per threshold; predicts named probabilities.

    Args:
        thresholds: Event thresholds in the target's unit (sorted in ``fit``).
        event: ``below`` (low visibility) or ``above`` the threshold.
        max_iter, learning_rate, max_depth, max_leaf_nodes, l2_regularization: those of
            scikit-learn's ``HistGradientBoostingClassifier``.
        random_state: Seed of the classifiers.
    """

    def __init__(
        self,
        thresholds: tuple[float, ...] = (1000.0, 5000.0),
        event: str = "below",
        max_iter: int = 60,
        learning_rate: float = 0.05,
        max_depth: int | None = None,
        max_leaf_nodes: int = 15,
        l2_regularization: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.thresholds = thresholds
        self.event = event
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> ThresholdProbabilityClassifier:
        from sklearn.ensemble import HistGradientBoostingClassifier

        events = self._prepare(y)
        self.classifiers_: list[Any] = []
        for j in range(len(self.thresholds_)):
            clf = HistGradientBoostingClassifier(
                max_iter=self.max_iter, learning_rate=self.learning_rate,
                max_depth=self.max_depth, max_leaf_nodes=self.max_leaf_nodes,
                l2_regularization=self.l2_regularization, early_stopping=False,
                random_state=self.random_state)
            clf.fit(X, events[:, j].astype(int))
            self.classifiers_.append(clf)
        return self

    def predict_proba_array(self, X: Any) -> np.ndarray:
        """Monotone event probabilities, rows x thresholds (increasing)."""
        raw = np.column_stack([clf.predict_proba(X)[:, 1] for clf in self.classifiers_])
        return monotone_probabilities(raw, self.event)

    def staged_losses(self, X: Any, y: Any, X_val: Any, y_val: Any) -> list[dict[str, float | None]]:
        """Brier score / Brier score of the training frequency, averaged over thresholds,
        every ~2 % of the boosting stages, on training and validation rows."""
        e_train, e_val = self._events(y).astype(float), self._events(y_val).astype(float)
        rates = np.asarray(self.base_rates_)
        ref = np.maximum(rates * (1 - rates), 1e-12)
        n_iter = min(int(clf.n_iter_) for clf in self.classifiers_)
        every = max(1, n_iter // 50)
        stages = [(list(c.staged_predict_proba(X)), list(c.staged_predict_proba(X_val)))
                  for c in self.classifiers_]
        points: list[dict[str, float | None]] = []
        for i in range(n_iter):
            if (i + 1) % every and i + 1 != n_iter:
                continue
            p_train = np.column_stack([s[0][i][:, 1] for s in stages])
            p_val = np.column_stack([s[1][i][:, 1] for s in stages])
            points.append({
                "train_loss": float(np.mean(((p_train - e_train) ** 2).mean(0) / ref)),
                "val_loss": (float(np.mean(((p_val - e_val) ** 2).mean(0) / ref))
                             if len(e_val) else None),
            })
        return points
