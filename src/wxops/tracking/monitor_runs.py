"""Runs of the monitor: what it saw (live scores, drift) and did, one run per check."""

from __future__ import annotations

import math
from typing import Any

from wxops.tracking.experiments import ensure_experiment
from wxops.tracking.runs import log_dict, log_metrics, log_params, start_run


def log_monitor_run(experiment: str, artifact_root: str | None, *, name: str, tags: dict[str, str],
                    params: dict[str, Any], metrics: dict[str, float], payload: dict[str, Any],
                    artifact_file: str) -> str:
    """Record what the monitor saw and did as one run of ``experiment``; returns its id."""
    exp_id = ensure_experiment(experiment, artifact_root)
    with start_run(exp_id, name, tags=tags) as run_id:
        log_params(params)
        log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        log_dict(payload, artifact_file)
    return run_id
