"""The inference service: fast, validated, authenticated, hot-swappable.

``wxops serve`` serves a registered model (default ``visibility@champion``) over REST:
``POST /predict`` (pandas ``to_json`` strings, records, columns), ``POST /invocations``
(MLflow's scoring protocol), ``GET /health``, ``/ready``, ``/model``, ``/metrics`` and the
OpenAPI docs at ``/docs``. See :func:`create_app` and :func:`serve`.

Names load on first use, so ``wxops --help`` and other commands stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wxops.serve.app import create_app
    from wxops.serve.auth import TokenSet, load_tokens
    from wxops.serve.model import LoadedModel, ModelHolder, ModelRef, load_model, parse_model_ref
    from wxops.serve.payload import Batch, InputSchema
    from wxops.serve.server import RunningServer, build_app, run_in_thread, serve
    from wxops.serve.settings import TOKENS_ENV, PredictionLogSettings, ServeSettings

_EXPORTS: dict[str, str] = {
    "Batch": "wxops.serve.payload",
    "InputSchema": "wxops.serve.payload",
    "LoadedModel": "wxops.serve.model",
    "ModelHolder": "wxops.serve.model",
    "ModelRef": "wxops.serve.model",
    "PredictionLogSettings": "wxops.serve.settings",
    "RunningServer": "wxops.serve.server",
    "ServeSettings": "wxops.serve.settings",
    "TOKENS_ENV": "wxops.serve.settings",
    "TokenSet": "wxops.serve.auth",
    "build_app": "wxops.serve.server",
    "create_app": "wxops.serve.app",
    "load_model": "wxops.serve.model",
    "load_tokens": "wxops.serve.auth",
    "parse_model_ref": "wxops.serve.model",
    "run_in_thread": "wxops.serve.server",
    "serve": "wxops.serve.server",
}

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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
