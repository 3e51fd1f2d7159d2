"""wxops: MLOps for weather and climate machine learning, from research to operations.

The public API is re-exported here; heavy dependencies (MLflow, PyTorch) load lazily.
"""

from __future__ import annotations

from wxops.config import WxopsConfig, config_schema, load_config, parse_config
from wxops.errors import (
    ConfigError,
    DataQualityError,
    DataSourceError,
    FeatureError,
    ModelConfigError,
    SplitError,
    TrackingError,
    TrainingError,
    WxopsError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataQualityError",
    "DataSourceError",
    "FeatureError",
    "ModelConfigError",
    "PipelineResult",
    "SplitError",
    "TrackingError",
    "TrainingError",
    "WxopsConfig",
    "WxopsError",
    "__version__",
    "config_schema",
    "load_config",
    "parse_config",
    "run_pipeline",
]


def __getattr__(name: str) -> object:
    if name in ("run_pipeline", "PipelineResult"):
        from wxops import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'wxops' has no attribute {name!r}")
