"""Typed configuration: ``wxops.yaml`` parsed once, at the edge, into pydantic models.

One section per pipeline stage. Every model forbids unknown keys, so a typo such as
``hiden_dim`` fails with the key's path instead of being silently ignored. The defaults
of every field together are the reference use case (visibility at Greensboro airport).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from wxops.data.settings import DataConfig, NWPConfig, QCConfig, StationObsConfig
from wxops.errors import ConfigError
from wxops.models.settings import (
    GradientBoostingConfig,
    LinearConfig,
    MLPConfig,
    ModelSettings,
    ProbabilityConfig,
)
from wxops.models.types import MODEL_TYPES
from wxops.monitor.settings import (
    DriftConfig,
    Duration,
    LiveScoreRule,
    MonitorConfig,
    parse_duration,
)
from wxops.release.settings import (
    GATE_REFERENCES,
    GateConfig,
    GateRule,
    ProbabilityGateConfig,
)
from wxops.section import Section
from wxops.verify.score_table import lookup as _lookup_score
from wxops.verify.score_table import score_names as _score_names
from wxops.verify.score_table import threshold_label as threshold_label
from wxops.verify.settings import VerifyConfig

#: Columns that encode the observed weather itself and would leak a visibility target.
LEAKING_COLUMNS: tuple[str, ...] = ("present_weather",)


_Section = Section

# Sections whose settings live beside their subsystem, re-exported so that
# ``from wxops.config import X`` keeps working.
__all__ = ["GATE_REFERENCES", "DataConfig", "DriftConfig", "Duration", "GateConfig", "GateRule",
           "GradientBoostingConfig", "LinearConfig", "LiveScoreRule", "MLPConfig", "ModelConfig",
           "ModelSettings", "MonitorConfig", "NWPConfig", "ProbabilityConfig", "ProbabilityGateConfig",
           "QCConfig", "StationObsConfig",
           "VerifyConfig", "WxopsConfig", "config_schema", "load_config", "parse_config",
           "parse_duration", "section_hash", "threshold_label"]


class SlurmConfig(_Section):
    """Dask workers as Slurm batch jobs (``execution.executor: slurm``, via dask-jobqueue).

    Each job runs one worker process; the scheduler runs in the ``wxops run`` process,
    so the compute nodes must reach the submitting host and see the project's files and
    the Python environment at the same paths (a shared file system).
    """

    queue: str | None = None
    """Partition (``sbatch -p``); unset: the cluster's default."""
    account: str | None = None
    """Account charged (``sbatch -A``)."""
    walltime: str = Field(default="01:00:00", pattern=r"^(\d+-)?\d{1,2}:\d{2}(:\d{2})?$")
    cores: int = Field(default=1, ge=1, le=1024)
    """CPU cores per job (one worker process using them)."""
    memory: str = Field(default="4GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$")
    gpus: int = Field(default=0, ge=0, le=16)
    """GPUs per job (``--gres=gpu:N``)."""
    jobs: int = Field(default=2, ge=1, le=1000)
    """Jobs (workers) submitted at most."""
    setup: list[str] = Field(default_factory=list)
    """Shell lines run before the worker starts, e.g. ``module load cuda`` or
    ``source /project/venv/bin/activate``."""
    python: str | None = None
    """Interpreter on the nodes (default: the one running wxops)."""
    interface: str | None = None
    """Network interface the scheduler listens on (e.g. ``ib0``); default: the hostname's."""
    job_extra: list[str] = Field(default_factory=list)
    """Further ``#SBATCH`` options, e.g. ``--qos=normal``."""
    log_directory: Path | None = None
    """Where the jobs write their output (default: ``.wxops/slurm`` in the project)."""
    start_timeout_s: float = Field(default=600.0, gt=0)
    """How long to wait for the first job to start a worker (queue wait included)."""


class ExecutionConfig(_Section):
    """Where the heavy steps run: in this process, a local Dask cluster, or a scheduler."""

    executor: str = "local"
    """``local``, ``dask`` (a local cluster of worker processes), ``slurm`` (workers as
    Slurm jobs, see ``execution.slurm``) or ``tcp://host:port``."""
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    workers: int = Field(default=2, ge=1, le=512)
    """Worker processes of the local cluster (one thread each)."""
    connect_timeout_s: float = Field(default=30.0, gt=0)
    """How long to wait for a scheduler at a ``tcp://`` address."""

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, value: str) -> str:
        if value in ("local", "dask", "slurm") or value.startswith(("tcp://", "tls://", "inproc://")):
            return value
        raise ValueError("execution.executor: use local, dask, slurm or a scheduler address tcp://host:port")


DerivedFeature = Literal["dewpoint_depression", "wind_components", "cyclic_time", "station_onehot"]
"""``station_onehot`` (NWP MOS tables): the station becomes an input, one-hot encoded
inside the model, so a linear MOS learns one bias per station."""
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


def _model_union() -> Any:
    """The ``models:`` entry type: one settings class per registered model type,
    told apart by ``type`` (``wxops.models.types.MODEL_TYPES``)."""
    classes = tuple(t.settings for t in MODEL_TYPES.values())
    if len(classes) == 1:
        return classes[0]
    return Annotated[Union[classes], Field(discriminator="type")]  # noqa: UP007


if TYPE_CHECKING:
    ModelConfig = ModelSettings
else:
    ModelConfig = _model_union()


def _default_models() -> list[ModelConfig]:
    # The classic three-configuration MLP example, two scikit-learn baselines and one
    # configuration on a log target.
    return [
        MLPConfig(name="mlp-small", type="mlp", hidden_dim=32, learning_rate=1e-3,
                  batch_size=64, epochs=15),
        MLPConfig(name="mlp-wide", type="mlp", hidden_dim=128, learning_rate=1e-3,
                  batch_size=128, epochs=15),
        MLPConfig(name="mlp-fast", type="mlp", hidden_dim=64, learning_rate=1e-2,
                  batch_size=256, epochs=15),
        GradientBoostingConfig(name="gbm", type="gradient_boosting"),
        LinearConfig(name="ridge", type="linear"),
        # trained on log(1 + visibility): fog weighs as much as a clear day, so the
        # gate (not the squared error in metres) decides whether it is the better model
        GradientBoostingConfig(name="gbm-log", type="gradient_boosting", target_transform="log"),
        # P(visibility < 1000 m) and P(< 5000 m), verified with Brier skill and reliability
        ProbabilityConfig(name="gbm-prob", type="probability"),
    ]


class TrackingConfig(_Section):
    """Where runs and models are recorded."""

    uri: str | None = None
    """MLflow tracking URI. Unset: ``MLFLOW_TRACKING_URI``, else SQLite in the project."""
    experiment: str = "visibility"
    registered_model: str = "visibility"
    probability_model: str | None = None
    """Registered model of the best probability configuration (by validation Brier skill),
    released through its own gate; unset: ``<registered_model>-prob``; ``null``: none."""
    selection_metric: Literal["val_rmse", "val_mae"] = "val_rmse"
    secrets: list[str] = Field(default_factory=list)
    """Values never logged: replaced by ``***`` in params, tags, artifacts and log text
    (keys that look like password/token/secret/api_key/credential are redacted anyway)."""
    system_metrics: bool = True
    """Log CPU, memory (and GPU, with ``nvidia-ml-py``) of each configuration run as
    ``system/...`` metrics (MLflow's system metrics)."""
    system_metrics_interval: float = Field(default=1.0, gt=0, le=3600)
    """Seconds between system-metrics samples (short: configuration runs last seconds)."""

    @model_validator(mode="before")
    @classmethod
    def _default_probability_model(cls, data: Any) -> Any:
        # unset and null differ: unset names the default, null turns registration off
        if isinstance(data, dict) and "probability_model" not in data:
            data = {**data, "probability_model":
                    f"{data.get('registered_model', 'visibility')}-prob"}
        return data

    @model_validator(mode="after")
    def _distinct_models(self) -> TrackingConfig:
        if self.probability_model is not None and (
                self.probability_model.strip() == self.registered_model.strip()):
            raise ValueError(
                f"probability_model '{self.probability_model}' is the registered_model's own "
                "name: probability versions need a registered model of their own (e.g. "
                f"'{self.registered_model}-prob'), or null for none")
        if self.probability_model is not None and not self.probability_model.strip():
            raise ValueError("probability_model is empty: give a name, or null for none")
        return self


NotifyEvent = Literal["promotion", "rejection", "rollback", "incident"]
_ALL_EVENTS: tuple[NotifyEvent, ...] = ("promotion", "rejection", "rollback", "incident")


class _Channel(_Section):
    name: str = Field(default="", pattern=r"^[A-Za-z0-9_. -]*$")
    """Shown in warnings (default: the channel type)."""
    events: list[NotifyEvent] = Field(default_factory=lambda: list(_ALL_EVENTS))
    """Which events this channel receives."""
    timeout_s: float = Field(default=10.0, gt=0, le=300)


def _one_secret(channel: BaseModel, what: str) -> None:
    given = [k for k in (f"{what}_env", f"{what}_file") if getattr(channel, k) is not None]
    if len(given) > 1:
        raise ValueError(f"give the {what} once: {what}_env or {what}_file, not both")


class WebhookChannel(_Channel):
    """A chat webhook: Slack, Mattermost, Rocket.Chat (Slack JSON) or Microsoft Teams.

    The URL carries the channel's token, so it comes from an environment variable or a
    file readable by its owner only (mode 0600), never from this file.
    """

    type: Literal["webhook"]
    format: Literal["slack", "mattermost", "rocketchat", "teams"] = "slack"
    url_env: str | None = None
    """Environment variable holding the webhook URL."""
    url_file: Path | None = None
    """File (mode 0600) holding the webhook URL."""

    @model_validator(mode="after")
    def _url_source(self) -> WebhookChannel:
        _one_secret(self, "url")
        if self.url_env is None and self.url_file is None:
            raise ValueError("a webhook needs url_env (an environment variable) or url_file (a 0600 file)")
        return self


class EmailChannel(_Channel):
    """E-mail through an SMTP server; the password (if any) from environment or a 0600 file."""

    type: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _login(self) -> EmailChannel:
        _one_secret(self, "password")
        has_password = self.password_env is not None or self.password_file is not None
        if has_password != (self.username is not None):
            raise ValueError("username and password_env/password_file go together")
        return self


NotifyChannel = Annotated[WebhookChannel | EmailChannel, Field(discriminator="type")]


class NotifyConfig(_Section):
    """Who hears about releases and incidents (``wxops.notify``)."""

    channels: list[NotifyChannel] = Field(default_factory=list)


class WxopsConfig(_Section):
    """The whole ``wxops.yaml``."""

    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    models: list[ModelConfig] = Field(default_factory=_default_models, min_length=1)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, value: list[ModelConfig]) -> list[ModelConfig]:
        names = [m.name for m in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {dupes}")
        if all(MODEL_TYPES[m.type].output == "probability" for m in value):
            values = sorted(t.name for t in MODEL_TYPES.values() if t.output == "value")
            raise ValueError(f"list at least one deterministic model ({', '.join(values)}): it "
                             "is the registered version; probability models are verified next "
                             "to it")
        return value

    @model_validator(mode="after")
    def _known_scores(self) -> WxopsConfig:
        """Gate rules and monitor limits name scores of ``wxops.verify.score_table``."""
        known = _score_names(self.verify.thresholds)
        for i, rule in enumerate(self.gate.rules):
            if rule.score not in known:
                raise ValueError(
                    f"gate.rules.{i}: unknown score '{rule.score}'; known: {sorted(known)} "
                    "(categorical scores need their threshold in verify.thresholds)"
                )
            score = _lookup_score(rule.score)
            if score is not None and score.source == "probability":
                # the deterministic gate has values, not event probabilities: the rule
                # would only fail when the gate runs, after training
                raise ValueError(
                    f"gate.rules.{i}: '{rule.score}' is a probability score and the gate "
                    "rules judge the deterministic model's values; probability models are "
                    "judged by gate.probability (min_bss, max_worse_pct, reliability)"
                )
        live = _score_names(self.verify.thresholds, live=True)
        for i, live_rule in enumerate(self.monitor.live_rules):
            if live_rule.score not in live:
                why = ("is not computed live (it needs event probabilities)"
                       if live_rule.score in known else "is unknown")
                raise ValueError(
                    f"monitor.live_rules.{i}: score '{live_rule.score}' {why}; live scores: "
                    f"{sorted(live)} (categorical scores need their threshold in verify.thresholds)"
                )
            score = _lookup_score(live_rule.score)
            if (live_rule.limit is not None and score is not None and score.direction == "closer"
                    and live_rule.limit < 0):
                raise ValueError(f"monitor.live_rules.{i}: the limit on '{live_rule.score}' is the "
                                 "largest distance from perfect and cannot be negative")
        return self


def refresh_model_union() -> None:
    """Rebuild the ``models:`` union after a model type was (un)registered
    (called by ``wxops.models.types``)."""
    global ModelConfig
    ModelConfig = _model_union()  # type: ignore[misc]
    WxopsConfig.model_fields["models"].annotation = list[ModelConfig]  # type: ignore[valid-type]
    WxopsConfig.model_rebuild(force=True)


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
        elif "input" in err and err["type"] not in ("missing",) and err["loc"]:
            # (a whole-file rule names its own key; echoing the whole file would bury it)
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
    if base_dir is not None and cfg.data.nwp is not None:
        cfg = cfg.model_copy(update={"data": _resolve_nwp_paths(cfg.data, base_dir)})
    if base_dir is not None and cfg.notify.channels:
        channels = []
        for ch in cfg.notify.channels:
            key = "url_file" if isinstance(ch, WebhookChannel) else "password_file"
            secret_file = getattr(ch, key)
            if secret_file is not None and not secret_file.is_absolute():
                ch = ch.model_copy(update={key: (base_dir / secret_file).resolve()})
            channels.append(ch)
        cfg = cfg.model_copy(update={"notify": NotifyConfig(channels=channels)})
    return cfg


def _resolve_nwp_paths(data: DataConfig, base_dir: Path) -> DataConfig:
    """NWP, observation and station paths relative to the config's folder."""
    assert data.nwp is not None and data.obs is not None and data.stations is not None

    def absolute(p: str | Path) -> str:
        from wxops.data.remote import is_url

        if is_url(p):
            return str(p)
        path = Path(p)
        return str(path if path.is_absolute() else (base_dir / path).resolve())

    paths = data.nwp.paths
    nwp = data.nwp.model_copy(update={
        "paths": absolute(paths) if isinstance(paths, str) else [absolute(p) for p in paths]})
    obs = data.obs.model_copy(update={"path": Path(absolute(data.obs.path))})
    return data.model_copy(update={"nwp": nwp, "obs": obs,
                                   "stations": Path(absolute(data.stations))})


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
