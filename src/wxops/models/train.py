"""Build and train one model configuration (a pure stage: no I/O, no tracking).

Every model is a scikit-learn ``Pipeline`` of :class:`~wxops.features.MeteoFeatures`
and the estimator, so the logged model takes raw observations. Loss curves of every
type are on one scale: mean squared error divided by the training target's variance.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from wxops.config import ModelConfig
from wxops.errors import TrainingError, WxopsError
from wxops.features import TARGET, FeatureTable, MeteoFeatures
from wxops.models.mlp import EpochCallback, ScoresCallback
from wxops.models.settings import ThresholdSettings
from wxops.models.types import model_type
from wxops.split import Split


@dataclass
class TrainResult:
    """A fitted model and what it learned on the way."""

    name: str
    model: Pipeline
    params: dict[str, Any]
    history: list[dict[str, float | None]]
    metrics: dict[str, float]
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if imported) PyTorch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def build_estimator(cfg: ModelConfig, *, seed: int) -> Any:
    """The unfitted estimator a model configuration describes (by its registered type)."""
    return model_type(cfg.type).build(cfg, seed)


def train_model(
    cfg: ModelConfig,
    table: FeatureTable,
    split: Split,
    *,
    derived: list[str],
    seed: int,
    on_epoch: EpochCallback | None = None,
    on_scores: ScoresCallback | None = None,
) -> TrainResult:
    """Fit one configuration on ``split.train``; score it on ``split.validation``.

    ``on_epoch`` gets the loss curve point by point; ``on_scores`` the further per-epoch
    metrics of models that have them (probability MLPs: Brier score per threshold)."""
    seed_everything(seed)
    features = MeteoFeatures(derived=list(derived))
    x_train = features.fit_transform(split.train[table.inputs])
    x_val = features.transform(split.validation[table.inputs])
    y_train = split.train[TARGET].to_numpy(dtype=float)
    y_val = split.validation[TARGET].to_numpy(dtype=float)
    if model_type(cfg.type).output == "probability":
        assert isinstance(cfg, ThresholdSettings)
        return _train_probability(cfg, features, (x_train, y_train), (x_val, y_val),
                                  seed=seed, on_epoch=on_epoch, on_scores=on_scores)
    estimator = build_estimator(cfg, seed=seed)
    log = cfg.target_transform == "log"
    if log:
        from wxops.models.target import LogTargetRegressor

        estimator = LogTargetRegressor(estimator)
    # loss curves on the scale the estimator is fitted on
    fit_train, fit_val = (np.log1p(y_train), np.log1p(y_val)) if log else (y_train, y_val)
    var = float(np.var(fit_train)) or 1.0
    history: list[dict[str, float | None]] = []
    device = "cpu"
    try:
        inner = estimator
        if model_type(cfg.type).loss_curve == "epochs":
            estimator.fit(x_train, y_train, X_val=x_val, y_val=y_val, on_epoch=on_epoch)
            inner = estimator.regressor_ if log else estimator
            history = inner.history_
            device = getattr(inner, "device_", "cpu")
        else:
            estimator.fit(x_train, y_train)
            inner = estimator.regressor_ if log else estimator
            history = _staged_losses(inner, x_train, fit_train, x_val, fit_val, var,
                                     staged=model_type(cfg.type).loss_curve == "stages")
            if on_epoch is not None:
                for epoch, point in enumerate(history):
                    on_epoch(epoch, float(point["train_loss"] or 0.0), point["val_loss"])
    except WxopsError:
        raise
    except ValueError as exc:
        raise TrainingError(f"model '{cfg.name}' failed to train: {exc}") from exc
    model = Pipeline([("features", features), ("model", estimator)])
    pred_train = model.predict(split.train[table.inputs])
    pred_val = model.predict(split.validation[table.inputs])
    metrics = {
        "train_rmse": _rmse(pred_train, y_train),
        "val_rmse": _rmse(pred_val, y_val),
        "val_mae": float(np.mean(np.abs(pred_val - y_val))),
        "val_bias": float(np.mean(pred_val - y_val)),
    }
    if not all(np.isfinite(v) for v in metrics.values()):
        raise TrainingError(f"model '{cfg.name}' produced non-finite predictions")
    params = cfg.model_dump(mode="json")
    params.update({"model": cfg.type, "seed": seed, "device_used": device,
                   "n_train": len(y_train), "n_validation": len(y_val)})
    return TrainResult(cfg.name, model, params, history, metrics, device)


def _train_probability(
    cfg: ThresholdSettings,
    features: MeteoFeatures,
    train: tuple[pd.DataFrame, np.ndarray],
    val: tuple[pd.DataFrame, np.ndarray],
    *,
    seed: int,
    on_epoch: EpochCallback | None,
    on_scores: ScoresCallback | None,
) -> TrainResult:
    """Fit a probability model; Brier score (and skill against the training event
    frequency) on training and validation rows, per threshold."""
    from wxops.models.probability import ThresholdProbabilityModel

    estimator = build_estimator(cfg, seed=seed)
    if not isinstance(estimator, ThresholdProbabilityModel):
        raise TrainingError(f"model type '{cfg.type}' is registered with output 'probability' "
                            f"but builds a {type(estimator).__name__}, not a "
                            "wxops.models.probability.ThresholdProbabilityModel")
    (x_train, y_train), (x_val, y_val) = train, val
    by_epoch = model_type(cfg.type).loss_curve == "epochs"
    try:
        if by_epoch:
            estimator.fit(x_train, y_train, X_val=x_val, y_val=y_val, on_epoch=on_epoch,
                          on_scores=on_scores)
        else:
            estimator.fit(x_train, y_train)
    except WxopsError:
        raise
    except ValueError as exc:
        raise TrainingError(f"model '{cfg.name}' failed to train: {exc}") from exc
    if by_epoch:
        history = estimator.history_
    else:
        history = estimator.staged_losses(x_train, y_train, x_val, y_val)
        if on_epoch is not None:
            for epoch, point in enumerate(history):
                on_epoch(epoch, float(point["train_loss"] or 0.0), point["val_loss"])
    model = Pipeline([("features", features), ("model", estimator)])
    metrics: dict[str, float] = {}
    for name, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
        if not len(y):
            continue
        prob = estimator.predict_proba_array(x)
        events = estimator._events(y).astype(float)
        for j, threshold in enumerate(estimator.thresholds_):
            label = f"{threshold:g}"
            rate = estimator.base_rates_[j]
            brier = float(np.mean((prob[:, j] - events[:, j]) ** 2))
            metrics[f"{name}_brier_{label}"] = brier
            if name == "val":
                clim = float(np.mean((rate - events[:, j]) ** 2))
                metrics[f"val_bss_{label}"] = 1.0 - brier / clim if clim > 0 else float("nan")
                metrics[f"val_events_{label}"] = float(events[:, j].sum())
    device = str(getattr(estimator, "device_", "cpu"))
    params = cfg.model_dump(mode="json")
    params.update({"model": cfg.type, "seed": seed, "device_used": device,
                   "n_train": len(y_train), "n_validation": len(y_val)})
    return TrainResult(cfg.name, model, params, history, metrics, device)


def _rmse(pred: np.ndarray, obs: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - obs) ** 2)))


def _staged_losses(
    estimator: Any,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_val: pd.DataFrame,
    y_val: np.ndarray,
    var: float,
    *,
    staged: bool,
) -> list[dict[str, float | None]]:
    """Loss per boosting stage (every ~2 % of stages) for ``stages`` model types, read
    from ``staged_predict`` and ``n_iter_``; one point for one-shot models."""
    if staged and not (hasattr(estimator, "staged_predict") and hasattr(estimator, "n_iter_")):
        raise TrainingError(f"{type(estimator).__name__} has no staged_predict/n_iter_; register "
                            "its model type with loss_curve='single' (wxops.models.types)")
    if not staged:
        return [{
            "train_loss": float(np.mean((estimator.predict(x_train) - y_train) ** 2)) / var,
            "val_loss": float(np.mean((estimator.predict(x_val) - y_val) ** 2)) / var,
        }]
    every = max(1, estimator.n_iter_ // 50)
    points: list[dict[str, float | None]] = []
    stages = zip(estimator.staged_predict(x_train), estimator.staged_predict(x_val), strict=True)
    for i, (p_train, p_val) in enumerate(stages):
        if (i + 1) % every == 0 or i + 1 == estimator.n_iter_:
            points.append({
                "train_loss": float(np.mean((p_train - y_train) ** 2)) / var,
                "val_loss": float(np.mean((p_val - y_val) ** 2)) / var,
            })
    return points
