"""Settings of the built-in model types (``models:`` entries of ``wxops.yaml``).

Each type's keys are a :class:`ModelSettings` subclass with a ``type`` literal; the
registry in :mod:`wxops.models.types` ties it to its estimator, requirements and loss
curve, and ``wxops.config`` builds the ``models:`` union from that registry.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from wxops.section import Section


class ModelSettings(Section):
    """Keys every model configuration has."""

    type: str
    """The model type (a name in ``wxops.models.types.MODEL_TYPES``)."""
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    target_transform: Literal["none", "log"] = "none"
    """``log``: train on log(1 + target) and predict in the target's unit, so fog (100 m)
    weighs as much as a clear day (see ``wxops.models.target``); ``none``: the target."""


class MLPSettings(ModelSettings):
    """Keys of every PyTorch multi-layer perceptron (``mlp``, ``probability_mlp``)."""

    hidden_dim: int = Field(default=64, ge=1, le=4096)
    hidden_layers: int = Field(default=2, ge=1, le=8)
    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    batch_size: int = Field(default=64, ge=1)
    epochs: int = Field(default=20, ge=1, le=10_000)
    weight_decay: float = Field(default=0.0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"


class MLPConfig(MLPSettings):
    """A PyTorch multi-layer perceptron regressor."""

    type: Literal["mlp"]


class GradientBoostingConfig(ModelSettings):
    """scikit-learn's histogram gradient boosting regressor."""

    type: Literal["gradient_boosting"]
    max_iter: int = Field(default=200, ge=1)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    max_depth: int | None = Field(default=None, ge=1)
    max_leaf_nodes: int = Field(default=31, ge=2)
    l2_regularization: float = Field(default=0.0, ge=0)


class LinearConfig(ModelSettings):
    """Ridge regression on standardised features."""

    type: Literal["linear"]
    alpha: float = Field(default=1.0, ge=0)


class ThresholdSettings(ModelSettings):
    """Keys of every probability model type: which events it forecasts."""

    thresholds: list[float] = Field(default_factory=lambda: [1000.0, 5000.0])
    """Event thresholds in the target's unit (visibility: metres); sorted, as
    ``verify.thresholds``, so the output columns follow increasing thresholds."""
    event: Literal["below", "above"] = "below"

    @field_validator("thresholds")
    @classmethod
    def _some_thresholds(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("list at least one threshold")
        if not all(math.isfinite(t) for t in value):
            raise ValueError(f"thresholds must be finite numbers, got {value}")
        return sorted(set(value))

    @field_validator("target_transform")
    @classmethod
    def _no_transform(cls, value: str) -> str:
        if value != "none":
            raise ValueError("a probability model predicts events, not the target: "
                             "leave target_transform at none")
        return value


class ProbabilityConfig(ThresholdSettings):
    """Probability of the target below (or above) each threshold: one histogram
    gradient-boosting classifier per threshold, monotone across thresholds
    (``wxops.models.probability``). Verified with probabilistic scores (Brier skill,
    reliability, ROC) next to the deterministic configurations, not selected among them."""

    type: Literal["probability"]
    # smaller steps and trees than the regressor's defaults: fog is rare (~2 % of hours)
    # and 31-leaf trees learn the training hours by heart (validation Brier rises)
    max_iter: int = Field(default=60, ge=1)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    max_depth: int | None = Field(default=None, ge=1)
    max_leaf_nodes: int = Field(default=15, ge=2)
    l2_regularization: float = Field(default=1.0, ge=0)


class ProbabilityMLPConfig(MLPSettings, ThresholdSettings):
    """Probability of the target below (or above) each threshold from one PyTorch MLP:
    a shared body, one sigmoid output per threshold, trained on the summed cross-entropy,
    monotone across thresholds by construction (``wxops.models.probability_mlp``).
    Verified like ``probability``; per-epoch Brier score per threshold in its run."""

    type: Literal["probability_mlp"]
