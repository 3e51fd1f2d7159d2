"""The model-type registry: every ``type:`` a ``models:`` entry may name, in one place.

A :class:`ModelType` ties a type name to its settings (a pydantic model, see
:mod:`wxops.models.settings`), the estimator it builds, the packages a logged model of
it needs and how its loss curve is made. Config (the ``models:`` union), training,
the logged model's requirements and the loss-curve plot read it, so a new model type is
one :func:`register_model_type` call::

    from typing import Literal
    from wxops.models.settings import ModelSettings
    from wxops.models.types import ModelType, register_model_type

    class KNNConfig(ModelSettings):
        type: Literal["knn"]
        neighbours: int = 10

    def build_knn(cfg: KNNConfig, seed: int) -> Any:
        from sklearn.neighbors import KNeighborsRegressor
        return KNeighborsRegressor(n_neighbors=cfg.neighbours)

    register_model_type(ModelType("knn", KNNConfig, build_knn))

Estimators are imported inside ``build``, so a cached run loads neither scikit-learn nor
PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from wxops.models.settings import (
    GradientBoostingConfig,
    LinearConfig,
    MLPConfig,
    ModelSettings,
    ProbabilityConfig,
    ProbabilityMLPConfig,
)

Output = Literal["value", "probability"]
"""``value``: predicts the target (a candidate for registration, selected by
``tracking.selection_metric``); ``probability``: predicts event probabilities, trained
by ``train_probability`` and verified with probability scores next to the registered
version, never selected or registered."""
LossCurve = Literal["epochs", "stages", "single"]
"""``epochs``: the estimator's ``fit(X, y, X_val=, y_val=, on_epoch=)`` records
``history_`` per epoch (the PyTorch MLPs; a probability one also takes ``on_scores=`` for
its per-threshold Brier scores per epoch); ``stages``: scored after fitting per stage of
``staged_predict`` (boosting); ``single``: one point (a one-shot fit)."""

#: Packages every logged model needs (its pipeline is scikit-learn, pickled).
BASE_REQUIREMENTS: tuple[str, ...] = ("scikit-learn", "pandas", "numpy", "cloudpickle")

_AXIS: dict[LossCurve, str] = {"epochs": "epoch", "stages": "boosting stage / 2 %",
                               "single": "single fit"}


@dataclass(frozen=True)
class ModelType:
    """One model type: its settings, its estimator and what a logged model of it needs."""

    name: str
    """The ``type:`` value in ``wxops.yaml``; must equal the settings' ``type`` literal."""
    settings: type[ModelSettings]
    build: Callable[[Any, int], Any]
    """``build(settings, seed)`` -> an unfitted scikit-learn-style regressor."""
    requirements: tuple[str, ...] = ()
    """pip packages a logged model needs beyond :data:`BASE_REQUIREMENTS`."""
    loss_curve: LossCurve = "single"
    output: Output = "value"

    @property
    def loss_axis(self) -> str:
        """What one point of its loss curve is, for plot axes (``epoch``...)."""
        return _AXIS[self.loss_curve]

    @property
    def pip_packages(self) -> tuple[str, ...]:
        """Every package a logged model of this type needs."""
        return (*BASE_REQUIREMENTS, *self.requirements)


MODEL_TYPES: dict[str, ModelType] = {}
"""Every registered model type by name, in registration order."""


def register_model_type(model_type: ModelType) -> ModelType:
    """Add a model type; ``wxops.config`` then accepts ``type: <name>`` in ``models:``."""
    literal = model_type.settings.model_fields["type"].annotation
    if getattr(literal, "__args__", None) != (model_type.name,):
        raise ValueError(f"model type '{model_type.name}': its settings class "
                         f"{model_type.settings.__name__} needs `type: Literal['{model_type.name}']`")
    if model_type.name in MODEL_TYPES:
        raise ValueError(f"model type '{model_type.name}' is already registered")
    MODEL_TYPES[model_type.name] = model_type
    _refresh_config()
    return model_type


def unregister_model_type(name: str) -> None:
    """Remove a model type (for plugins and tests that register one temporarily)."""
    if MODEL_TYPES.pop(name, None) is not None:
        _refresh_config()


def probability_types() -> set[str]:
    """Names of the registered types that predict event probabilities."""
    return {t.name for t in MODEL_TYPES.values() if t.output == "probability"}


def model_type(name: str) -> ModelType:
    """The registered type ``name``; ModelConfigError listing the known ones otherwise."""
    from wxops.errors import ModelConfigError

    try:
        return MODEL_TYPES[name]
    except KeyError:
        raise ModelConfigError(f"unknown model type {name!r}; known: {sorted(MODEL_TYPES)}") from None


def _refresh_config() -> None:
    """Rebuild ``wxops.config``'s ``models:`` union if config is already imported."""
    import sys

    refresh = getattr(sys.modules.get("wxops.config"), "refresh_model_union", None)
    if refresh is not None:  # absent while wxops.config itself is being imported
        refresh()


def _build_mlp(cfg: MLPConfig, seed: int) -> Any:
    from wxops.models.mlp import TorchMLPRegressor

    return TorchMLPRegressor(
        hidden_dim=cfg.hidden_dim, hidden_layers=cfg.hidden_layers,
        learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, epochs=cfg.epochs,
        weight_decay=cfg.weight_decay, device=cfg.device, random_state=seed,
    )


def _build_gradient_boosting(cfg: GradientBoostingConfig, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        max_iter=cfg.max_iter, learning_rate=cfg.learning_rate, max_depth=cfg.max_depth,
        max_leaf_nodes=cfg.max_leaf_nodes, l2_regularization=cfg.l2_regularization,
        early_stopping=False, random_state=seed,
    )


def _build_linear(cfg: LinearConfig, seed: int) -> Any:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    del seed  # ridge regression is deterministic
    return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=cfg.alpha))])


def _build_probability(cfg: ProbabilityConfig, seed: int) -> Any:
    from wxops.models.probability import ThresholdProbabilityClassifier

    return ThresholdProbabilityClassifier(
        thresholds=tuple(cfg.thresholds), event=cfg.event, max_iter=cfg.max_iter,
        learning_rate=cfg.learning_rate, max_depth=cfg.max_depth,
        max_leaf_nodes=cfg.max_leaf_nodes, l2_regularization=cfg.l2_regularization,
        random_state=seed,
    )


def _build_probability_mlp(cfg: ProbabilityMLPConfig, seed: int) -> Any:
    from wxops.models.probability_mlp import TorchThresholdProbabilityMLP

    return TorchThresholdProbabilityMLP(
        thresholds=tuple(cfg.thresholds), event=cfg.event, hidden_dim=cfg.hidden_dim,
        hidden_layers=cfg.hidden_layers, learning_rate=cfg.learning_rate,
        batch_size=cfg.batch_size, epochs=cfg.epochs, weight_decay=cfg.weight_decay,
        device=cfg.device, random_state=seed,
    )


register_model_type(ModelType("mlp", MLPConfig, _build_mlp, requirements=("torch",),
                              loss_curve="epochs"))
register_model_type(ModelType("gradient_boosting", GradientBoostingConfig,
                              _build_gradient_boosting, loss_curve="stages"))
register_model_type(ModelType("linear", LinearConfig, _build_linear))
register_model_type(ModelType("probability", ProbabilityConfig, _build_probability,
                              loss_curve="stages", output="probability"))
register_model_type(ModelType("probability_mlp", ProbabilityMLPConfig, _build_probability_mlp,
                              requirements=("torch",), loss_curve="epochs",
                              output="probability"))
