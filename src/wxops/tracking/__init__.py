"""The only package that imports MLflow for tracking: runs, metrics, models, registry, aliases.

Everything else in wxops talks to tracking through the names below, so swapping the
embedded SQLite store for a team server is a URI, not a code change. MLflow is imported
lazily (inside the functions) so ``wxops --help`` and a fully cached run stay fast.

One module per concern:

- :mod:`~wxops.tracking.session`: the store, the open runs, the switch to the outbox;
- :mod:`~wxops.tracking.writer`: the one background thread doing the writes nobody waits for;
- :mod:`~wxops.tracking.system`: system metrics (CPU, memory, GPU) of a run;
- :mod:`~wxops.tracking.experiments`: experiments, marked as model training for the UI;
- :mod:`~wxops.tracking.runs`: runs and what is logged into them;
- :mod:`~wxops.tracking.queries`: reads of runs;
- :mod:`~wxops.tracking.models`: logged models;
- :mod:`~wxops.tracking.registry`: versions, registration, aliases;
- :mod:`~wxops.tracking.alias_history`: who held an alias when;
- :mod:`~wxops.tracking.integrity`: sha256 of model artifacts, checked on load;
- :mod:`~wxops.tracking.serving`: a registered version loaded for serving;
- :mod:`~wxops.tracking.monitor_runs`: runs of the monitor;
- :mod:`~wxops.tracking.internals`: every MLflow call outside its public API, pinned by tests.
"""

from __future__ import annotations

from wxops.tracking.alias_history import HISTORY_TAG, append_alias_history, read_alias_history
from wxops.tracking.experiments import KIND_TAG, KIND_TRAINING, UI_VIEW, ensure_experiment, ui_link
from wxops.tracking.integrity import (
    ARTIFACT_TAG,
    check_digests,
    fetch_verified_model,
    folder_digests,
    load_verified_model,
    model_artifact_digests,
)
from wxops.tracking.internals import logged_model_id
from wxops.tracking.models import load_sklearn_model, log_model, model_input_example, model_signature
from wxops.tracking.monitor_runs import log_monitor_run
from wxops.tracking.queries import (
    download_run_folder,
    get_run_record,
    metric_histories,
    read_run_json,
    run_exists,
    search_runs,
)
from wxops.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    OFFLINE_SOURCE_SCHEME,
    REGISTRATION_TAG,
    REMOTE_MODEL_RUN_TAG,
    REMOTE_MODEL_TAG,
    Registration,
    alias_map,
    get_alias_version,
    get_model_version,
    register_model,
    set_aliases,
    set_version_description,
    set_version_tags,
)
from wxops.tracking.runs import (
    epoch_logger,
    fail_unfinished_children,
    failed_runs_cleanup,
    log_artifact,
    log_dataset,
    log_dict,
    log_folder_to_run,
    log_history,
    log_metrics,
    log_metrics_to_run,
    log_params,
    log_text,
    log_text_to_run,
    metrics_logger,
    open_run,
    set_tags,
    start_run,
)
from wxops.tracking.serving import ServableModel, load_servable_model, resolve_model_version
from wxops.tracking.session import (
    RunRef,
    active_run_id,
    connect,
    current_uri,
    default_artifact_root,
    is_offline,
    resolve_tracking_uri,
)
from wxops.tracking.system import DEFAULT_INTERVAL as SYSTEM_METRICS_INTERVAL

__all__ = [
    "ARTIFACT_TAG", "CHALLENGER", "CHAMPION", "HISTORY_TAG", "KIND_TAG", "KIND_TRAINING",
    "OFFLINE_SOURCE_SCHEME", "REGISTRATION_TAG", "REMOTE_MODEL_RUN_TAG", "REMOTE_MODEL_TAG",
    "SYSTEM_METRICS_INTERVAL", "UI_VIEW", "Registration", "RunRef", "ServableModel", "active_run_id",
    "alias_map", "append_alias_history", "check_digests", "connect", "current_uri",
    "default_artifact_root", "download_run_folder", "ensure_experiment", "epoch_logger",
    "fail_unfinished_children", "failed_runs_cleanup", "fetch_verified_model", "folder_digests",
    "get_alias_version", "get_model_version", "get_run_record", "is_offline",
    "load_servable_model", "load_sklearn_model", "load_verified_model", "log_artifact",
    "log_dataset", "log_dict", "log_folder_to_run", "log_history", "log_metrics",
    "log_metrics_to_run", "log_model", "log_monitor_run", "log_params", "log_text",
    "log_text_to_run", "logged_model_id", "metric_histories", "metrics_logger",
    "model_artifact_digests", "model_input_example", "model_signature", "open_run",
    "read_alias_history",
    "read_run_json", "register_model", "resolve_model_version", "resolve_tracking_uri",
    "run_exists", "search_runs", "set_aliases", "set_tags", "set_version_description",
    "set_version_tags", "start_run", "ui_link",
]
