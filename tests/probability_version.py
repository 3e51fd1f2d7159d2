"""A registered probability version, as a real pipeline run logs it, for serve/monitor tests.

The session fixtures' :func:`wxops.run_pipeline` configs list :data:`PROBABILITY_MODEL`
next to their ridge: the pipeline trains it, verifies it on the test block and logs the
scores to its run. :func:`register_probability_version` registers that logged model as
its own registered model with the registry tags and artifact digests a pipeline version
carries, unless the pipeline registered it itself (``tracking.probability_model``): that
version is used as it is. Tests serve it pinned (``name/version``): its gate may have
left it challenger.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A small ``type: probability`` configuration (two classifiers of 15 trees).
PROBABILITY_MODEL: dict[str, object] = {"name": "gbm-prob", "type": "probability",
                                        "max_iter": 15}


@dataclass(frozen=True)
class ProbabilityVersion:
    name: str
    version: str
    run_id: str


def register_probability_version(pipeline_run_id: str, uri: str, *, base: str,
                                 name: str = "visibility-prob") -> ProbabilityVersion:
    """The registered version of the probability model of pipeline run ``pipeline_run_id``
    (store ``uri``; ``base`` is the model that run registered)."""
    import mlflow

    from wxops import tracking
    from wxops.tracking.session import point_at

    point_at(uri)
    client = mlflow.MlflowClient()
    parent = client.get_run(pipeline_run_id)
    # `wxops run` registers the best probability configuration itself (tracking.probability_model)
    champion = parent.data.tags.get("wxops.probability_version") or tracking.get_alias_version(
        name, "champion")
    if champion is None:
        child = client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{pipeline_run_id}' and "
                          f"tags.mlflow.runName = '{PROBABILITY_MODEL['name']}'")[0]
        logged = mlflow.search_logged_models(
            experiment_ids=[child.info.experiment_id],
            filter_string=f"source_run_id = '{child.info.run_id}'", output_format="list")
        base_tags = tracking.get_model_version(
            base, parent.data.tags["wxops.registered_version"])["tags"]
        keep = ("data_sha256", "training_data_sha256", "config_hash", "git_commit")
        registration = tracking.register_model(
            f"models:/{logged[0].model_id}", name, run_id=child.info.run_id,
            tags={**{k: base_tags[k] for k in keep if k in base_tags},
                  "config_name": str(PROBABILITY_MODEL["name"]),
                  "pipeline_run_id": pipeline_run_id})
        assert registration.became_champion
        champion = registration.version
    version = tracking.get_model_version(name, champion)
    return ProbabilityVersion(name, champion, str(version["run_id"]))
