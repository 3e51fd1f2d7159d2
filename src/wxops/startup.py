"""Process-wide settings, applied once when the CLI starts (never in constructors)."""

from __future__ import annotations

import logging
import os
import warnings


def configure_process(*, verbose: bool = False) -> None:
    """Quiet third-party noise that says nothing to a wxops user; keep real warnings."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # A gone tracking server is noticed in ~3 s (then runs go to the outbox), not after
    # MLflow's default 7 retries with exponential backoff (minutes).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    level = logging.INFO if verbose else logging.WARNING
    logging.getLogger("mlflow").setLevel(level)
    logging.getLogger("alembic").setLevel(level)
    # urllib3 announces each retry; wxops says once itself when the server is gone.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    # cloudpickle is deliberate: wxops' own transformers travel inside the model.
    logging.getLogger("mlflow.sklearn").setLevel(logging.INFO if verbose else logging.ERROR)
    warnings.filterwarnings("ignore", message=".*pickle or cloudpickle format.*")
    warnings.filterwarnings("ignore", message=".*dataset source can be interpreted.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="mlflow")
