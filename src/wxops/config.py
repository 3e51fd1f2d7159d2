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
    column_action: Literal["drop", "refuse"] = "drop"
    """A predictor whose rows one rule flags in more than ``max_column_share`` of the rows
    (a stuck sensor, an empty or all-sentinel column) is removed from the predictors
    (``drop``, with a QC message naming column, rule and count) or stops the run
    (``refuse``). The target is never dropped: a bad target always stops the run."""
    max_column_share: float = Field(default=0.5, gt=0, le=1)
    max_drop_share: float = Field(default=0.5, gt=0, le=1)
    """QC that would drop more than this share of the rows stops the run with the column,
    the rule, the count and the likely cause (e.g. units)."""


class NWPConfig(_Section):
    """Gridded NWP forecasts read through xarray and extracted at the stations."""

    source: Literal["netcdf", "zarr", "grib"] = "netcdf"
    paths: str | list[str]
    """A glob (``nwp/*.nc``) or a list of files, relative to the config's folder; entries
    may be URLs (``https://``, ``s3://bucket/nwp/*.nc``), downloaded into the cache."""
    sha256: dict[str, str] = Field(default_factory=dict)
    """Pinned sha256 per downloaded file, keyed by URL or file name."""

    @model_validator(mode="after")
    def _remote_files(self) -> NWPConfig:
        import re

        from wxops.data.remote import is_url

        bad = sorted(k for k, v in self.sha256.items() if not re.fullmatch(r"[0-9a-fA-F]{64}", v))
        if bad:
            raise ValueError(f"data.nwp.sha256: {bad} are not sha256 digests (64 hex digits)")
        entries = [self.paths] if isinstance(self.paths, str) else self.paths
        if self.source == "zarr" and any(is_url(e) for e in entries):
            raise ValueError("data.nwp.paths: a Zarr store is a folder and cannot be downloaded as one "
                             "file; use netcdf or grib files at URLs, or a local copy of the store")
        return self
    variables: list[str] = Field(min_length=1)
    """Variables to extract, under their names in the files (``t2m``, ``d2m``...)."""
    interpolation: Literal["nearest", "bilinear"] = "nearest"
    height_correction: bool = False
    """Correct 2 m temperatures from the model orography to the station elevation
    with the standard lapse rate (0.0065 K/m); needs an orography variable."""
    orography: str = "orog"
    """Variable holding the model orography in metres (geopotential ``z`` is divided by g)."""
    units: dict[str, str] = Field(default_factory=dict)
    """Expected ``units`` attribute per variable, e.g. ``{t2m: K}``; a mismatch is an error."""
    columns: dict[str, str] = Field(default_factory=dict)
    """Renames after extraction, from file names to wxops names, e.g. ``{d2m: td2m}``."""
    chunk_stations: int = Field(default=10, ge=1)
    """Stations per preprocessing task: the unit streamed and written as one partition."""
    chunk_files: int | None = Field(default=None, ge=1)
    """Files per preprocessing task (None: all). Few stations and many files: set it so
    that there are at least as many tasks as workers."""


class StationObsConfig(_Section):
    """Station observations in long form: station id, time and the variables."""

    source: Literal["table"] = "table"
    path: Path
    time_column: str = "time"
    station_column: str = "station"
    columns: dict[str, str] = Field(default_factory=dict)


class DataConfig(_Section):
    """Where the observations come from and how they are cleaned.

    With ``nwp``, ``obs`` and ``stations`` set the table is built from NWP forecasts
    extracted at the stations and joined with the observation at the valid time.
    """

    source: Literal["tmy3", "tmy2", "table", "netcdf", "zarr"] = "tmy3"
    path: Path | None = None
    """File to read; for ``tmy3`` the default is the Greensboro year shipped in pvlib.
    A URL (``https://``, ``s3://``, any fsspec protocol) is moved to ``url``."""
    url: str | None = None
    """Remote file, downloaded once into the digest-keyed cache (``wxops.data.remote``)."""
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    """Pinned sha256 of the file at ``url``: other bytes are refused, a cached copy is
    used without asking the server."""
    download_retries: int = Field(default=3, ge=0, le=20)
    """Further attempts after a failed download (backoff 0.5 s, 1 s, 2 s...)."""
    storage_options: dict[str, Any] = Field(default_factory=dict)
    """fsspec options for URLs (e.g. ``{anon: true}``); credentials belong in the
    environment (``AWS_*``), not here."""
    time_column: str = "time"
    columns: dict[str, str] = Field(default_factory=dict)
    """Renames from the file's column names to wxops names, e.g. ``{"T2M [K]": t2m}``."""
    units: dict[str, str] = Field(default_factory=dict)
    """Units of the file's columns (file or wxops names), converted to wxops' units with
    pint, e.g. ``{t2m: degF, wind_speed: knot, pressure: inHg, visibility: mile}``.
    NetCDF/Zarr ``units`` attributes are read without this; a disagreement is an error."""
    na_values: list[str] | dict[str, list[str]] = Field(default_factory=list)
    """Missing-value markers as written in the file (``M``, ``-``), for every column or
    per column (file or wxops names); counted in the QC report."""
    timezone: str | None = None
    """IANA time zone of naive times in tables and NetCDF/Zarr (``America/New_York``);
    unset: naive times are UTC. See :mod:`wxops.data.sources` for the daylight-saving rule."""
    station: str | None = None
    """For netcdf/zarr files with a ``station`` dimension: which station to read."""
    qc: QCConfig = Field(default_factory=QCConfig)
    nwp: NWPConfig | None = None
    obs: StationObsConfig | None = None
    stations: Path | None = None
    """CSV with columns ``id, lat, lon, elevation`` (elevation in metres)."""

    @model_validator(mode="before")
    @classmethod
    def _url_in_path(cls, raw: Any) -> Any:
        """``path: https://...`` is a URL: kept as text (a Path would fold ``//``)."""
        from wxops.data.remote import is_url

        if isinstance(raw, dict) and isinstance(raw.get("path"), str) and is_url(raw["path"]):
            if raw.get("url") is not None:
                raise ValueError("set data.path or data.url, not both")
            raw = {**raw, "url": raw["path"], "path": None}
        return raw

    @model_validator(mode="after")
    def _path_needed(self) -> DataConfig:
        given = [self.nwp is not None, self.obs is not None, self.stations is not None]
        if any(given) and not all(given):
            raise ValueError("data.nwp, data.obs and data.stations go together: set all three")
        if self.timezone is not None:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"data.timezone: unknown time zone {self.timezone!r}; use an "
                                 "IANA name such as America/New_York or UTC") from exc
        if self.url is not None and self.path is not None:
            raise ValueError("set data.path or data.url, not both")
        if self.sha256 is not None and self.url is None:
            raise ValueError("data.sha256 pins a downloaded file: give data.path as a URL (https://, s3://...)")
        if self.source != "tmy3" and self.path is None and self.url is None and self.nwp is None:
            raise ValueError(f"data.path is required for source '{self.source}'")
        return self

    @property
    def is_nwp(self) -> bool:
        """Whether the table comes from NWP forecasts at stations."""
        return self.nwp is not None


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


class _ModelBase(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    target_transform: Literal["none", "log"] = "none"
    """``log``: train on log(1 + target) and predict in the target's unit, so fog (100 m)
    weighs as much as a clear day (see ``wxops.models.target``); ``none``: the target."""


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


class ProbabilityConfig(_ModelBase):
    """Probability of the target below (or above) each threshold: one histogram
    gradient-boosting classifier per threshold, monotone across thresholds
    (``wxops.models.probability``). Verified with probabilistic scores (Brier skill,
    reliability, ROC) next to the deterministic configurations, not selected among them."""

    type: Literal["probability"]
    thresholds: list[float] = Field(default_factory=lambda: [1000.0, 5000.0])
    """Event thresholds in the target's unit (visibility: metres)."""
    event: Literal["below", "above"] = "below"
    # smaller steps and trees than the regressor's defaults: fog is rare (~2 % of hours)
    # and 31-leaf trees learn the training hours by heart (validation Brier rises)
    max_iter: int = Field(default=60, ge=1)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    max_depth: int | None = Field(default=None, ge=1)
    max_leaf_nodes: int = Field(default=15, ge=2)
    l2_regularization: float = Field(default=1.0, ge=0)

    @field_validator("thresholds")
    @classmethod
    def _some_thresholds(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("list at least one threshold")
        return sorted(set(value))

    @field_validator("target_transform")
    @classmethod
    def _no_transform(cls, value: str) -> str:
        if value != "none":
            raise ValueError("a probability model predicts events, not the target: "
                             "leave target_transform at none")
        return value


ModelConfig = Annotated[
    MLPConfig | GradientBoostingConfig | LinearConfig | ProbabilityConfig,
    Field(discriminator="type"),
]


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
    selection_metric: Literal["val_rmse", "val_mae"] = "val_rmse"
    secrets: list[str] = Field(default_factory=list)
    """Values never logged: replaced by ``***`` in params, tags, artifacts and log text
    (keys that look like password/token/secret/api_key/credential are redacted anyway)."""


#: Continuous scores the verification computes (negatively oriented except correlation).
CONTINUOUS_SCORES: tuple[str, ...] = ("mae", "rmse", "bias", "correlation")
#: Categorical scores at each threshold, named ``<score>_<threshold>`` (e.g. ``ets_1000``).
CATEGORICAL_SCORES: tuple[str, ...] = ("pod", "far", "csi", "ets", "pss", "frequency_bias",
                                       "brier")
#: Forecasts a gate rule can compare the candidate with.
GATE_REFERENCES: tuple[str, ...] = ("climatology", "persistence", "nwp", "champion")


def threshold_label(value: float) -> str:
    """``1000.0`` -> ``"1000"``: the suffix of categorical score names."""
    return f"{value:g}"


class VerifyConfig(_Section):
    """How forecasts are verified on the held-out test block."""

    thresholds: list[float] = Field(default_factory=lambda: [1000.0, 5000.0])
    """Event thresholds for categorical scores (target units; visibility in metres)."""
    event: Literal["below", "above"] = "below"
    """An event is the target below the threshold (fog: low visibility) or above it."""
    nwp_column: str | None = None
    """Column holding a raw NWP forecast of the target; it becomes a reference forecast."""
    station_column: str = "station"
    """Scores are stratified by this column when the data has several stations."""
    cap: float | Literal["auto"] | None = "auto"
    """Common maximum applied alike to observations, every forecast and the climatology
    before verification: visibility is reported up to caps that changed over the years
    (16, 24, 32 km in one TMY3 year). ``auto``: 16000 m (10 statute miles, what METAR/ASOS
    report at most) for a ``visibility`` target, none otherwise; null: no cap."""

    def cap_for(self, target: str) -> float | None:
        """The cap in force for ``target`` (resolves ``auto``)."""
        if self.cap == "auto":
            from wxops.verify.references import VISIBILITY_CAP

            return VISIBILITY_CAP if target == "visibility" else None
        return self.cap

    @field_validator("thresholds")
    @classmethod
    def _sorted_thresholds(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("list at least one threshold")
        return sorted(set(value))


class GateRule(_Section):
    """One rule of the quality gate: the candidate's ``score`` against a reference forecast.

    Set exactly one of ``min_skill`` (skill = 1 - score/score_reference for error scores,
    (score - ref)/(1 - ref) for scores whose perfect value is 1; must exceed it) or
    ``max_worse_pct`` (the candidate may be worse than the reference by at most this many
    percent, in the score's own orientation).
    """

    score: str
    """A score name: ``rmse``, ``mae``, ``correlation`` or e.g. ``ets_1000``, ``pod_5000``."""
    against: Literal["climatology", "persistence", "nwp", "champion"]
    min_skill: float | None = None
    max_worse_pct: float | None = Field(default=None, ge=0)
    alpha: float | None = Field(default=None, gt=0, lt=1)
    """Significance level: a ``min_skill`` rule then also needs p < alpha that the candidate
    is better, and a ``max_worse_pct`` rule fails only when it is significantly worse.
    rmse/mae: Diebold-Mariano (HLN); ETS, PSS...: block bootstrap (see
    ``wxops.release.significance``)."""
    min_events: int | None = Field(default=None, ge=1)
    """Categorical scores: fewest observed events (``gate.min_events`` when unset) for the
    rule to decide; with fewer it says "too few events (n=...)" and neither passes nor
    fails."""

    @model_validator(mode="after")
    def _one_criterion(self) -> GateRule:
        if (self.min_skill is None) == (self.max_worse_pct is None):
            raise ValueError(
                f"gate rule on '{self.score}' vs {self.against}: set exactly one of "
                "min_skill or max_worse_pct"
            )
        return self

    @property
    def label(self) -> str:
        """Short human name, e.g. ``rmse vs climatology: skill > 0``."""
        if self.min_skill is not None:
            return f"{self.score} vs {self.against}: skill > {self.min_skill:g}"
        return f"{self.score} vs {self.against}: at most {self.max_worse_pct:g} % worse"


def _default_rules() -> list[GateRule]:
    # Fog and low visibility decide as much as the error in metres: the categorical rules
    # ask for skill over persistence (lead-time mode) and no significant loss against the
    # champion, each only where the test block has enough events to judge.
    return [
        GateRule(score="rmse", against="climatology", min_skill=0.0, alpha=0.05),
        GateRule(score="rmse", against="persistence", min_skill=0.0),
        GateRule(score="ets_1000", against="persistence", min_skill=0.0),
        GateRule(score="ets_5000", against="persistence", min_skill=0.0),
        GateRule(score="rmse", against="champion", max_worse_pct=2.0, alpha=0.05),
        GateRule(score="ets_1000", against="champion", max_worse_pct=10.0, alpha=0.05),
        GateRule(score="ets_5000", against="champion", max_worse_pct=10.0, alpha=0.05),
    ]


class ProbabilityGateConfig(_Section):
    """Gate rules of probability models (``wxops.release.probability_gate``), per threshold.

    Brier skill against the climatological event frequency must exceed ``min_bss`` with
    p < ``alpha`` (Diebold-Mariano on the per-case Brier scores, as rmse rules); against a
    champion probability model the Brier score may be at most ``max_worse_pct`` worse
    unless that is not significant; the reliability rule fails when a probability bin with
    at least ``reliability_min_cases`` cases has its observed frequency outside the
    interval a reliable forecaster stays in, at family-wise false-alarm rate
    ``reliability_alpha`` over the bins tested."""

    min_bss: float = 0.0
    max_worse_pct: float = Field(default=5.0, ge=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    reliability_alpha: float = Field(default=0.01, gt=0, lt=1)
    reliability_min_cases: int = Field(default=30, ge=5)
    min_events: int = Field(default=10, ge=1)
    """Fewest observed events for a rule at a threshold to decide."""


class GateConfig(_Section):
    """The quality gate between a registered version and the ``champion`` alias."""

    rules: list[GateRule] = Field(default_factory=_default_rules)
    probability: ProbabilityGateConfig = Field(default_factory=ProbabilityGateConfig)
    bootstrap_block_hours: int | None = Field(default=None, ge=1)
    """Block length of the block bootstrap in hours; None (default): chosen from the data
    (twice the Politis-White automatic length, see ``wxops.release.significance``)."""
    bootstrap_samples: int = Field(default=1000, ge=100, le=100_000)
    replay_cycle_hours: int = Field(default=1, ge=1, le=24)
    """Forecast-cycling replay: one forecast cycle every this many hours. 1: every hour of
    the test block (rare events need every case); 6: 00/06/12/18 UTC."""
    min_events: int = Field(default=10, ge=1)
    """Fewest observed events a categorical rule needs to decide (rules may override)."""
    latency_budget_ms: float = Field(default=2000.0, gt=0)
    """Technical test: most milliseconds one batch prediction may take."""
    latency_batch_rows: int = Field(default=256, ge=1)



# --- monitor ---


def parse_duration(text: str) -> float:
    """``"7d"``, ``"6h"``, ``"30m"``, ``"90s"`` -> seconds (how windows are written)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
    value = text.strip().lower()
    if len(value) < 2 or value[-1] not in units:
        raise ValueError(f"duration {text!r}: write a number and a unit s/m/h/d/w, e.g. 7d or 6h")
    try:
        number = float(value[:-1])
    except ValueError as exc:
        raise ValueError(f"duration {text!r}: write a number and a unit s/m/h/d/w, e.g. 7d") from exc
    if number <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return number * units[value[-1]]


Duration = Annotated[str, Field(pattern=r"^\s*[0-9]+(\.[0-9]+)?\s*[smhdw]\s*$")]


class LiveScoreRule(_Section):
    """A live score that must stay near its level at promotion.

    The live value breaches the rule when it is worse than the promotion value by more
    than ``max_worse_pct`` percent (in the score's own orientation), or beyond the
    absolute ``limit`` when the version has no recorded promotion scores.
    """

    score: str = "rmse"
    max_worse_pct: float = Field(default=25.0, ge=0)
    limit: float | None = None
    """Absolute fallback: largest (error scores) or smallest (ETS, POD...) allowed value."""


def _default_live_rules() -> list[LiveScoreRule]:
    return [LiveScoreRule(score="rmse", max_worse_pct=25.0),
            LiveScoreRule(score="mae", max_worse_pct=25.0)]


class DriftConfig(_Section):
    """Input drift: PSI and KS per feature, against a season-aware training baseline and,
    where the observation files carry the same variable, against the observations."""

    features: list[str] | None = None
    """Features to watch; None: every numeric model input."""
    bins: int = Field(default=10, ge=3, le=100)
    month_window: int = Field(default=1, ge=0, le=6)
    """Baseline months: the live months and this many either side (circular)."""
    hour_window: int = Field(default=1, ge=0, le=12)
    """Baseline hours of day: the live hours and this many either side (circular)."""
    min_baseline_rows: int = Field(default=200, ge=10)
    training_margin: float = Field(default=1.25, ge=1.0)
    """Alert on the training baseline when PSI exceeds the largest PSI that the training
    data's own windows of the same length show, times this margin."""
    observed_psi: float = Field(default=0.2, gt=0)
    """Alert when inputs and the observations of the same variable at the same valid
    times differ by more than this PSI (0.1-0.25 is the usual 'moderate shift')."""
    observed_ks: float = Field(default=0.15, gt=0, le=1)


class MonitorConfig(_Section):
    """Monitoring in operations: live verification, drift, staleness, corrective action."""

    prediction_log: Path = Path("predictions.db")
    """The service's prediction log (SQLite file or Parquet folder), relative to the project."""
    window: Duration = "7d"
    step: Duration = "6h"
    """Rolling windows end every ``step``; consecutive windows count towards ``windows``."""
    max_windows: int = Field(default=120, ge=1, le=10_000)
    min_samples: int = Field(default=24, ge=1)
    """A window with fewer joined forecast/observation pairs is not scored."""
    windows: int = Field(default=3, ge=1, le=1000)
    """Consecutive windows a rule must be breached before it becomes an incident."""
    live_rules: list[LiveScoreRule] = Field(default_factory=_default_live_rules)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    max_observation_age: Duration = "6h"
    max_input_age: Duration = "6h"
    max_invalid_share: float = Field(default=0.05, ge=0, le=1)
    service_url: str | None = None
    """Base URL of ``wxops serve``; its ``/metrics`` gives the share of invalid requests."""
    action: Literal["none", "recommend_rollback", "retrain"] = "recommend_rollback"
    metrics_port: int = Field(default=9109, ge=0, le=65535)
    """Port of the monitor's own ``/metrics`` in ``--watch`` mode (0: any free port)."""

    @field_validator("window", "step", "max_observation_age", "max_input_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


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
        if all(isinstance(m, ProbabilityConfig) for m in value):
            raise ValueError("list at least one deterministic model (mlp, gradient_boosting, "
                             "linear): it is the registered version; probability models are "
                             "verified next to it")
        return value

    @model_validator(mode="after")
    def _known_gate_scores(self) -> WxopsConfig:
        known = set(CONTINUOUS_SCORES) | {
            f"{name}_{threshold_label(t)}" for name in CATEGORICAL_SCORES
            for t in self.verify.thresholds
        }
        for i, rule in enumerate(self.gate.rules):
            if rule.score not in known:
                raise ValueError(
                    f"gate.rules.{i}: unknown score '{rule.score}'; known: {sorted(known)} "
                    "(categorical scores need their threshold in verify.thresholds)"
                )
        return self


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
