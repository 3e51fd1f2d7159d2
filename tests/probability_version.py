"""A registered probability version, as a real pipeline run logs it, for serve/monitor tests.

:func:`wxops.run_pipeline` trains and verifies a small ``type: probability``
configuration next to a ridge (the registered deterministic version); the probability
configuration's logged model is then registered as its own model with the registry tags
and artifact digests a pipeline version carries. When the pipeline registers the
probability model itself, that version is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wxops.config import parse_config
from wxops.pipeline import run_pipeline

PROB_CONFIG = "gbm-prob"


@dataclass(frozen=True)
class ProbabilityVersion:
    name: str
    version: str
    run_id: str
    model_uri: str


def register_probability_version(root: Path, uri: str, *, name: str = "visibility-prob",
                                 base: str = "visibility") -> ProbabilityVersion:
    """Run the pipeline in ``root`` (store ``uri``) and make ``name`` hold its probability
    model as champion."""
    import mlflow

    from wxops import tracking
    from wxops.tracking.session import point_at

    cfg = parse_config({
        "seed": 7,
        "models": [{"name": "ridge", "type": "linear", "alpha": 1.0},
                   {"name": PROB_CONFIG, "type": "probability", "max_iter": 15}],
        "tracking": {"uri": uri, "registered_model": base},
    })
    result = run_pipeline(cfg, project_dir=root)
    point_at(uri)
    client = mlflow.MlflowClient()
    child = client.search_runs(
        [client.get_run(result.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}' and "
                      f"tags.mlflow.runName = '{PROB_CONFIG}'")[0]
    logged = mlflow.search_logged_models(
        experiment_ids=[child.info.experiment_id],
        filter_string=f"source_run_id = '{child.info.run_id}'", output_format="list")
    model_uri = f"models:/{logged[0].model_id}"
    champion = tracking.get_alias_version(name, "champion")
    if champion is None:
        base_tags = tracking.get_model_version(base, result.version)["tags"]
        keep = ("data_sha256", "training_data_sha256", "config_hash", "git_commit")
        registration = tracking.register_model(
            model_uri, name, run_id=child.info.run_id,
            tags={**{k: base_tags[k] for k in keep if k in base_tags},
                  "config_name": PROB_CONFIG, "pipeline_run_id": result.run_id})
        assert registration.became_champion
        champion = registration.version
    version = tracking.get_model_version(name, champion)
    return ProbabilityVersion(name, champion, str(version["run_id"]), model_uri)
