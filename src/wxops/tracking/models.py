"""Logged models: scikit-learn models with signature and input example, read back for
the release cycle's checks (signature changes, a fresh-process load, a test prediction)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wxops.errors import TrackingError
from wxops.tracking import session

if TYPE_CHECKING:
    import pandas as pd


def log_model(
    model: Any,
    name: str,
    *,
    input_example: pd.DataFrame,
    pip_requirements: list[str],
    code_paths: list[str] | None = None,
) -> str:
    """Log a scikit-learn model with signature and input example; return its model URI."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, model.predict(input_example))
    session.drain()  # the logged model copies the run's params: they must be there

    def log(client: Any) -> str:
        run_id = session.rid()
        mlflow.set_experiment(experiment_id=client.get_run(run_id).info.experiment_id)
        info = mlflow.sklearn.log_model(
            model, name=name, signature=signature, input_example=input_example,
            pip_requirements=pip_requirements, code_paths=code_paths,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE, run_id=run_id,
        )
        return str(info.model_uri)

    return session.write(log)


def load_sklearn_model(model_uri: str) -> Any:
    """Load a logged scikit-learn model; TrackingError when missing or corrupted."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.sklearn.load_model(model_uri)
    except (MlflowException, OSError, EOFError, ValueError, ImportError, AttributeError) as exc:
        raise TrackingError(f"cannot load model {model_uri}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # unpickling a damaged file raises almost anything
        raise TrackingError(f"cannot load model {model_uri} (damaged artifact?): "
                            f"{type(exc).__name__}: {exc}") from exc


def model_signature(model_uri: str) -> dict[str, Any]:
    """Input and output schema of a logged model as JSON-ready lists."""
    import json

    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    try:
        info = get_model_info(model_uri)
    except (MlflowException, OSError) as exc:
        raise TrackingError(f"cannot read the model metadata of {model_uri}: {exc}") from exc
    sig = info.signature
    if sig is None:
        return {"inputs": [], "outputs": []}
    outputs = json.loads(sig.outputs.to_json()) if sig.outputs is not None else []
    return {"inputs": json.loads(sig.inputs.to_json()), "outputs": outputs}


def model_input_example(model_uri: str) -> pd.DataFrame:
    """The input example logged with a model, with its signature's datetime columns parsed."""
    import tempfile

    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="wxops-example-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
            model = Model.load(local)
            example = model.load_input_example(local)
        except (MlflowException, OSError) as exc:
            raise TrackingError(f"cannot read the input example of {model_uri}: {exc}") from exc
    if example is None:
        raise TrackingError(f"{model_uri} has no input example to test it with")
    frame = pd.DataFrame(example)
    if model.signature is not None:
        for spec in model.signature.inputs.to_dict():
            if spec.get("type") == "datetime" and spec.get("name") in frame:
                frame[spec["name"]] = pd.to_datetime(frame[spec["name"]])
    return frame
