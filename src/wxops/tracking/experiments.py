"""Experiments: found or created by name, marked as model training for MLflow's UI.

MLflow 3's UI opens an experiment on the view its kind tag names; without the tag it
guesses, and an empty or fresh experiment opens on the GenAI "Traces" overview. wxops
experiments hold training runs, so every experiment wxops creates (or finds without a
kind) is tagged ``custom_model_development`` and opens on the runs table.
"""

from __future__ import annotations

from typing import Any

from wxops.errors import TrackingError
from wxops.tracking import session
from wxops.tracking.session import KIND_TAG, KIND_TRAINING


def ensure_experiment(name: str, artifact_root: str | None) -> str:
    """Experiment id of ``name``, creating it (with its artifact folder) when missing.

    A configured secret inside ``name`` is stored as ``***`` (the name is redacted
    before the look-up, so the same name finds the same experiment). An experiment
    without a kind gets the training kind; one a user gave another kind keeps it."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from wxops import redact
    from wxops.outbox import outbox_artifacts

    name = redact.redact_text(name)

    def open_experiment(client: Any) -> str:
        root = artifact_root
        s = session.current()
        if s.offline and s.outbox is not None:
            root = outbox_artifacts(s.outbox)
        exp = client.get_experiment_by_name(name)
        if exp is None:
            return str(client.create_experiment(name, artifact_location=root,
                                                tags={KIND_TAG: KIND_TRAINING}))
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        if KIND_TAG not in (exp.tags or {}):
            client.set_experiment_tag(exp.experiment_id, KIND_TAG, KIND_TRAINING)
        return str(exp.experiment_id)

    try:
        exp_id = session.write(open_experiment)
    except MlflowException as exc:
        raise TrackingError(f"cannot open experiment '{name}' at {mlflow.get_tracking_uri()}: {exc}") from exc
    session.current().exp_names[exp_id] = name
    return exp_id


#: Query parameter of MLflow 3's UI choosing its view: "machine_learning" (runs, models,
#: the "Model training" switch) or "genai" (traces). The UI defaults to "genai" and, since
#: 3.x, takes the view from this switch rather than from the experiment's kind tag.
UI_VIEW = "workflowType=machine_learning"


def ui_link(base_url: str, experiment: str) -> str:
    """Address of ``experiment`` in MLflow's UI at ``base_url``, on the model-training view
    (its runs); the experiment list on that view when the experiment does not exist yet."""
    base = base_url.rstrip("/")
    from wxops import redact

    exp = session.client().get_experiment_by_name(redact.redact_text(experiment))
    if exp is None or exp.lifecycle_stage == "deleted":
        return f"{base}/#/experiments?{UI_VIEW}"
    return f"{base}/#/experiments/{exp.experiment_id}?{UI_VIEW}"
