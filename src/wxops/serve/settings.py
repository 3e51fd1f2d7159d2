"""Typed settings of the inference service, built once from CLI options at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Environment variable that holds bearer tokens (``scopes:token`` entries, ``;``-separated).
TOKENS_ENV = "WXOPS_SERVE_TOKENS"


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


class ServeSettings(BaseModel):
    """Everything ``wxops serve`` needs; one object passed down, never a dict."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
