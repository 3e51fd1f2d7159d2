"""Integrity of model artifacts: the sha256 of each file, recorded at registration and
checked on every load, so a damaged or swapped file never serves."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from wxops.errors import ArtifactIntegrityError, TrackingError
from wxops.tracking import session

_log = logging.getLogger("wxops.tracking")

#: Version tag with the sha256 of each file of the model artifact (JSON), set at registration.
ARTIFACT_TAG = "wxops.artifact_sha256"


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """sha256 of each file of a model folder; the bundled ``code/`` as one digest.

    ``code/`` (wxops' own source, logged with every model) is summarised in one entry so
    the record fits in a registry tag; byte-code caches and MLflow's download marker
    ``registered_model_meta`` are not part of the model.
    """
    out: dict[str, str] = {}
    code = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if "__pycache__" in rel or rel.endswith(".pyc") or rel == "registered_model_meta":
            continue
        if rel.startswith("code/"):
            code.update(f"{rel}:{_file_sha256(path)}\n".encode())
        else:
            out[rel] = _file_sha256(path)
    out["code/"] = code.hexdigest()
    return out


def check_digests(recorded: dict[str, str], folder: Path, *, what: str) -> None:
    """Raise ArtifactIntegrityError unless ``folder`` holds exactly the recorded files' bytes.

    Every recorded file must be there with its recorded sha256 (files MLflow adds on
    download are ignored), so a truncated, replaced or deleted file is refused.
    """
    now = folder_digests(folder)
    problems = []
    for rel, sha in sorted(recorded.items()):
        got = now.get(rel)
        if got is None:
            problems.append(f"{rel} is missing")
        elif got != sha:
            problems.append(f"{rel} has sha256 {got[:12]}…, recorded {sha[:12]}… at registration")
    if problems:
        raise ArtifactIntegrityError(
            f"{what}: the model artifact is not the one registered ({'; '.join(problems)}); it "
            "was changed or damaged after registration and is refused. Restore the file from a "
            "backup or register a new version with `wxops run`")


def model_artifact_digests(model_uri: str) -> dict[str, str]:
    """sha256 of the files of a logged model (``models:/m-…`` or ``runs:/…``), recorded at
    registration so every later load can check it got the same bytes."""
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="wxops-digest-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        except (MlflowException, OSError) as exc:
            raise TrackingError(f"cannot read the model artifact {model_uri}: {exc}") from exc
        return folder_digests(Path(local))


def fetch_verified_model(name: str, version: str, dst: Path) -> Path:
    """Download version ``version`` of ``name`` into ``dst`` and check its recorded sha256.

    Loading from the checked copy (not from the store again) means the bytes that were
    checked are the bytes that run. A version registered before digests were recorded
    loads with a warning.

    Raises:
        ArtifactIntegrityError: a file differs from, or is missing against, the record.
        TrackingError: the version or its artifact cannot be read.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = session.client()
    try:
        mv = client.get_model_version(name, str(version))
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=str(dst)))
    except (MlflowException, OSError) as exc:
        raise TrackingError(f"cannot read model {name}/{version}: {exc}") from exc
    recorded = (mv.tags or {}).get(ARTIFACT_TAG)
    if recorded is None:
        _log.warning("%s/%s has no recorded sha256 (registered before wxops recorded them); "
                    "its integrity is not checked", name, version)
        return local
    check_digests(json.loads(recorded), local, what=f"model {name} version {version}")
    return local


def load_verified_model(name: str, version: str) -> tuple[Any, dict[str, Any]]:
    """The scikit-learn model of ``name``/``version`` and its signature, integrity checked."""
    import tempfile

    import mlflow.sklearn
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="wxops-model-") as tmp:
        local = fetch_verified_model(name, version, Path(tmp))
        try:
            model = mlflow.sklearn.load_model(str(local))
            sig = Model.load(str(local)).signature
        except Exception as exc:  # unpickling a damaged file raises almost anything
            raise TrackingError(f"cannot load model {name}/{version}: {type(exc).__name__}: "
                                f"{exc}") from exc
    if sig is None:
        return model, {"inputs": [], "outputs": []}
    outputs = json.loads(sig.outputs.to_json()) if sig.outputs is not None else []
    return model, {"inputs": json.loads(sig.inputs.to_json()), "outputs": outputs}
