"""The inference service: fast, validated, authenticated, hot-swappable.

``wxops serve`` serves a registered model (default ``visibility@champion``) over REST:
``POST /predict`` (pandas ``to_json`` strings, records, columns), ``POST /invocations``
(MLflow's scoring protocol), ``GET /health``, ``/ready``, ``/model``, ``/metrics`` and the
OpenAPI docs at ``/docs``. See :func:`create_app` and :func:`serve`.
"""

from __future__ import annotations

from wxops.serve.app import create_app
from wxops.serve.auth import TokenSet, load_tokens
from wxops.serve.model import LoadedModel, ModelHolder, ModelRef, load_model, parse_model_ref
from wxops.serve.payload import Batch, InputSchema
from wxops.serve.server import RunningServer, build_app, run_in_thread, serve
from wxops.serve.settings import TOKENS_ENV, PredictionLogSettings, ServeSettings

__all__ = [
    "TOKENS_ENV",
    "Batch",
    "InputSchema",
    "LoadedModel",
    "ModelHolder",
    "ModelRef",
    "PredictionLogSettings",
    "RunningServer",
    "ServeSettings",
    "TokenSet",
    "build_app",
    "create_app",
    "load_model",
    "load_tokens",
    "parse_model_ref",
    "run_in_thread",
    "serve",
]
