"""Typed settings of the inference service, built once at the edge.

Every setting has one name: the ``wxops serve`` option ``--token-file`` is the
environment variable ``WXOPS_SERVE_TOKEN_FILE``, ``--port`` is ``WXOPS_SERVE_PORT`` and
so on (``WXOPS_SERVE_PREDICTION_LOG__PATH`` for a nested one). A command-line option
wins over the environment, the environment over the default, so a container image sets
its defaults with ``ENV`` and a compose file or a Kubernetes pod overrides them with
``environment``/``env``. Bearer tokens come from ``WXOPS_SERVE_TOKENS`` (never a field:
they are read once by :func:`wxops.serve.auth.load_tokens` and kept only as digests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Prefix of every environment variable of the service.
ENV_PREFIX = "WXOPS_SERVE_"
#: Environment variable that holds bearer tokens (``scopes:token`` entries, ``;``-separated).
TOKENS_ENV = f"{ENV_PREFIX}TOKENS"


class PredictionLogSettings(BaseModel):
    """Where every request's inputs and outputs go for monitoring, and how often.

    The log is written by a background thread every ``flush_seconds``; a crash loses at
    most what arrived since the last flush (and at most ``max_queue`` requests). When the
    queue is full, new entries are dropped and counted in
    ``wxops_prediction_log_dropped_total`` rather than slowing down predictions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = None
    """SQLite file (``.db``/``.sqlite``) or Parquet folder; None switches the log off."""
    format: Literal["sqlite", "parquet"] = "sqlite"
    flush_seconds: float = Field(default=1.0, gt=0, le=3600)
    max_queue: int = Field(default=10_000, ge=1)


class ServeSettings(BaseSettings):
    """Everything ``wxops serve`` needs; one object passed down, never a dict.

    Built from keyword arguments (the command line) over ``WXOPS_SERVE_*`` environment
    variables over the defaults; :func:`unknown_env` names a misspelt variable.
    """

    model_config = SettingsConfigDict(extra="forbid", frozen=True, env_prefix=ENV_PREFIX,
                                      env_nested_delimiter="__")

    model: str = "visibility@champion"
    """``name@alias`` (followed as the alias moves) or ``name/version`` (pinned)."""
    tracking_uri: str
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    poll_seconds: float = Field(default=30.0, ge=0)
    """How often to look up the alias in the registry; 0 disables polling."""
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    auth: bool = True
    token_file: Path | None = None
    """A file of ``scopes:token`` lines, readable by its owner only (mode 0600)."""
    prediction_log: PredictionLogSettings = Field(default_factory=PredictionLogSettings)
    inline_ms: float = Field(default=1.0, ge=0)
    """Predictions expected (by measurement) to take up to this long run on the event loop;
    longer ones in the prediction pool, so they never stall other connections."""
    queue_limit: int = Field(default=32, ge=1)
    """Predictions waiting or running in the pool; the next one is answered 503."""
    threads: int | None = Field(default=None, ge=1)
    """Threads per worker for PyTorch/OpenMP/MKL/OpenBLAS; None: cores // workers."""


def unknown_env(environ: dict[str, str] | None = None) -> list[str]:
    """``WXOPS_SERVE_*`` variables that name no setting (a typo would be ignored silently)."""
    import os

    env = dict(os.environ) if environ is None else environ
    known = {f"{ENV_PREFIX}{name.upper()}" for name in ServeSettings.model_fields} | {TOKENS_ENV}
    nested = {f"{ENV_PREFIX}PREDICTION_LOG__{name.upper()}" for name in PredictionLogSettings.model_fields}
    return sorted(k for k in env if k.upper().startswith(ENV_PREFIX) and k.upper() not in known | nested)
