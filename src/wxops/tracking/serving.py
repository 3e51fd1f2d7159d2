"""A registered version loaded for serving: the checked model, its signature and tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wxops.errors import TrackingError
from wxops.tracking import session
from wxops.tracking.integrity import fetch_verified_model


@dataclass(frozen=True)
class ServableModel:
    """A registered model version loaded for serving, with what a client may ask about it.

    ``model`` is the native scikit-learn object when the version has that flavour (its
    ``predict`` skips pyfunc's per-call schema enforcement, which the service does once
    itself), else the pyfunc model. ``inputs`` is the signature: dicts with ``name``,
    ``type`` (MLflow's type names) and ``required``.
    """

    name: str
    version: str
    run_id: str
    source: str
    model: Any
    flavor: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    tags: dict[str, str]


def resolve_model_version(
    name: str, *, alias: str | None = None, version: str | None = None
) -> str:
    """Version number that ``alias`` (or the explicit ``version``) of ``name`` points at."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = session.client()
    try:
        if alias is not None:
            return str(client.get_model_version_by_alias(name, alias).version)
        if version is None:
            raise TrackingError(
                "give an alias or a version, e.g. visibility@champion or visibility/3")
        return str(client.get_model_version(name, version).version)
    except MlflowException as exc:
        what = f"alias '{alias}'" if alias is not None else f"version {version}"
        raise TrackingError(
            f"registered model '{name}' has no {what} at {mlflow.get_tracking_uri()}; "
            "`wxops run` registers one"
        ) from exc


def load_servable_model(name: str, version: str) -> ServableModel:
    """Load version ``version`` of registered model ``name`` with its signature and tags."""
    import tempfile

    import mlflow
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="wxops-serve-") as tmp:
        # The checked copy is what gets loaded: a damaged or swapped file never serves.
        local = str(fetch_verified_model(name, version, Path(tmp)))
        try:
            mv = client.get_model_version(name, version)
            info = mlflow.models.Model.load(local)
            if info.signature is None:
                raise TrackingError(
                    f"{uri} has no signature; log it with one so the service can validate input"
                )
            if "sklearn" in info.flavors:
                import mlflow.sklearn

                model: Any = mlflow.sklearn.load_model(local)
                flavor = "sklearn"
            else:
                model = mlflow.pyfunc.load_model(local)
                flavor = "pyfunc"
        except MlflowException as exc:
            raise TrackingError(f"cannot load {uri}: {exc.message}") from exc
    outputs = info.signature.outputs.to_dict() if info.signature.outputs is not None else []
    return ServableModel(
        name=name, version=str(mv.version), run_id=str(mv.run_id or ""),
        source=str(mv.source), model=model, flavor=flavor,
        inputs=list(info.signature.inputs.to_dict()), outputs=list(outputs),
        tags=dict(mv.tags or {}),
    )
