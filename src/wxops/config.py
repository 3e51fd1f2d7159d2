"""Typed configuration: ``wxops.yaml`` parsed once, at the edge, into pydantic models.

One section per pipeline stage. Every model forbids unknown keys, so a typo such as
``hiden_dim`` fails with the key's path instead of being silently ignored. The defaults
of every field together are the reference use case (visibility at Greensboro airport).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wxops.errors import ConfigError

#: Columns that encode the observed weather itself and would leak a visibility target.
LEAKING_COLUMNS: tuple[str, ...] = ("present_weather",)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QCConfig(_Section):
    """Quality-control rules (see ``wxops.data.qc.QC_RULES`` for the table)."""

    action: Literal["drop", "keep"] = "drop"
    """``drop`` removes flagged rows; ``keep`` keeps them with a ``qc_flags`` column."""
    sentinels: list[float] = Field(default_factory=lambda: [-9900.0, -9999.0, 99999.0])
    max_gap_hours: float = Field(default=3.0, gt=0)
    max_constant_hours: int = Field(default=24, ge=2)
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """Overrides of the physical ranges, e.g. ``{t2m: [-60, 50]}``."""


class DataConfig(_Section):
    """Where the observations come from and how they are cleaned."""

    source: Literal["tmy3", "table", "netcdf", "zarr"] = "tmy3"
    path: Path | None = None
    """File to read; for ``tmy3`` the default is the Greensboro year shipped in pvlib."""
    time_column: str = "time"
    columns: dict[str, str] = Field(default_factory=dict)
    """Renames from the file's column names to wxops names, e.g. ``{"T2M [K]": t2m}``."""
    station: str | None = None
    """For netcdf/zarr files with a ``station`` dimension: which station to read."""
    qc: QCConfig = Field(default_factory=QCConfig)

    @model_validator(mode="after")
    def _path_needed(self) -> DataConfig:
        if self.source != "tmy3" and self.path is None:
            raise ValueError(f"data.path is required for source '{self.source}'")
        return self


DerivedFeature = Literal["dewpoint_depression", "wind_components", "cyclic_time"]
_DEFAULT_DERIVED: tuple[DerivedFeature, ...] = ("dewpoint_depression", "wind_components", "cyclic_time")


class FeaturesConfig(_Section):
    """Which predictors feed the models and what is derived from them."""

    target: str = "visibility"
    predictors: list[str] = Field(
        default_factory=lambda: [
            "t2m", "td2m", "rh", "pressure", "wind_speed", "wind_dir",
            "total_cloud", "opaque_cloud",
        ]
    )
    derived: list[DerivedFeature] = Field(
        default_factory=lambda: list(_DEFAULT_DERIVED)
    )
    lead_time: int | None = Field(default=None, ge=1, le=48)
    """Hours ahead: when set, the target is taken at t+lead_time (lead-time mode)."""
    lags: list[int] = Field(default_factory=lambda: [1, 2, 3])
    """Lag hours of the predictors and the target, used in lead-time mode only."""

    @field_validator("predictors")
    @classmethod
    def _no_leaks(cls, value: list[str]) -> list[str]:
        leaks = sorted(set(value) & set(LEAKING_COLUMNS))
        if leaks:
            raise ValueError(
                f"{leaks} leak the target (present-weather codes report the visibility "
                "itself); remove them from features.predictors"
            )
        if not value:
            raise ValueError("list at least one predictor")
        return value

    @field_validator("lags")
    @classmethod
    def _positive_lags(cls, value: list[int]) -> list[int]:
        if any(lag < 1 for lag in value):
            raise ValueError("lags are hours into the past and must be >= 1")
        return sorted(set(value))


class SplitConfig(_Section):
    """Time-blocked train/validation/test split."""

    block: Literal["month", "week", "day", "year"] = "month"
    strategy: Literal["interleaved", "chronological", "explicit"] = "interleaved"
    cycle: int = Field(default=4, ge=3)
    """interleaved: in each run of ``cycle`` blocks the last is test, the one before validation."""
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    validation_blocks: list[str] = Field(default_factory=list)
    test_blocks: list[str] = Field(default_factory=list)
    gap_hours: int = Field(default=0, ge=0)
    """Hours dropped at each edge where a block meets a block of another split."""
    min_rows: int = Field(default=24, ge=1)
    """Fewest rows each split must keep."""

    @model_validator(mode="after")
    def _explicit_lists(self) -> SplitConfig:
        if self.strategy == "explicit" and not (self.validation_blocks and self.test_blocks):
            raise ValueError("strategy 'explicit' needs validation_blocks and test_blocks")
        return self


class _ModelBase(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")


class MLPConfig(_ModelBase):
    """A PyTorch multi-layer perceptron regressor."""

    type: Literal["mlp"]
    hidden_dim: int = Field(default=64, ge=1, le=4096)
    hidden_layers: int = Field(default=2, ge=1, le=8)
    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    batch_size: int = Field(default=64, ge=1)
    epochs: int = Field(default=20, ge=1, le=10_000)
    weight_decay: float = Field(default=0.0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"


class GradientBoostingConfig(_ModelBase):
    """scikit-learn's histogram gradient boosting regressor."""

    type: Literal["gradient_boosting"]
    max_iter: int = Field(default=200, ge=1)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    max_depth: int | None = Field(default=None, ge=1)
    max_leaf_nodes: int = Field(default=31, ge=2)
    l2_regularization: float = Field(default=0.0, ge=0)


class LinearConfig(_ModelBase):
    """Ridge regression on standardised features."""

    type: Literal["linear"]
    alpha: float = Field(default=1.0, ge=0)


ModelConfig = Annotated[
    MLPConfig | GradientBoostingConfig | LinearConfig, Field(discriminator="type")
]


def _default_models() -> list[ModelConfig]:
    # The classic three-configuration MLP example plus two scikit-learn baselines.
    return [
        MLPConfig(name="mlp-small", type="mlp", hidden_dim=32, learning_rate=1e-3,
                  batch_size=64, epochs=15),
        MLPConfig(name="mlp-wide", type="mlp", hidden_dim=128, learning_rate=1e-3,
                  batch_size=128, epochs=15),
        MLPConfig(name="mlp-fast", type="mlp", hidden_dim=64, learning_rate=1e-2,
                  batch_size=256, epochs=15),
        GradientBoostingConfig(name="gbm", type="gradient_boosting"),
        LinearConfig(name="ridge", type="linear"),
    ]


class TrackingConfig(_Section):
    """Where runs and models are recorded."""

    uri: str | None = None
    """MLflow tracking URI. Unset: ``MLFLOW_TRACKING_URI``, else SQLite in the project."""
    experiment: str = "visibility"
    registered_model: str = "visibility"
    selection_metric: Literal["val_rmse", "val_mae"] = "val_rmse"


class WxopsConfig(_Section):
    """The whole ``wxops.yaml``."""

    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    models: list[ModelConfig] = Field(default_factory=_default_models, min_length=1)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, value: list[ModelConfig]) -> list[ModelConfig]:
        names = [m.name for m in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {dupes}")
        return value


def section_hash(section: BaseModel | list[Any]) -> str:
    """Stable sha256 of a config section, used in cache keys and as ``config_hash``."""
    if isinstance(section, list):
        payload: Any = [s.model_dump(mode="json") for s in section]
    else:
        payload = section.model_dump(mode="json")
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _format_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; `wxops config schema` lists the keys)"
        elif "input" in err and err["type"] not in ("missing",):
            msg = f"{msg} (got {err['input']!r})"
        lines.append(f"  {path}: {msg}")
    return "\n".join(lines)


def parse_config(raw: Any, *, source: str = "config", base_dir: Path | None = None) -> WxopsConfig:
    """Validate a mapping (as read from YAML) into a :class:`WxopsConfig`.

    Relative data paths are resolved against ``base_dir`` (the config file's folder).
    """
    if raw is None:
        raise ConfigError(f"{source}: the file is empty; `wxops init` writes a commented example")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping of sections, got {type(raw).__name__}")
    try:
        cfg = WxopsConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from exc
    if base_dir is not None and cfg.data.path is not None and not cfg.data.path.is_absolute():
        data = cfg.data.model_copy(update={"path": (base_dir / cfg.data.path).resolve()})
        cfg = cfg.model_copy(update={"data": data})
    return cfg


def load_config(path: Path | None) -> WxopsConfig:
    """Read ``wxops.yaml``; ``None`` gives the reference visibility use case."""
    if path is None:
        return WxopsConfig()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; `wxops init DIR` writes one")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(raw, source=str(path), base_dir=path.parent.resolve())


def config_schema() -> dict[str, Any]:
    """JSON schema of ``wxops.yaml`` (for editors and ``wxops config schema``)."""
    return WxopsConfig.model_json_schema()
