"""The model registry: versions, registration (also offline), aliases set together.

A registration survives the server going away half-way: the version is registered in
the outbox and `wxops sync` registers it on the server as ``challenger``; a version the
server created before it went away is found again by its registration id.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from wxops.errors import TrackingError
from wxops.tracking import session
from wxops.tracking.integrity import ARTIFACT_TAG, model_artifact_digests
from wxops.tracking.internals import logged_model_id

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Version tag: one id per registration attempt, so a retry (offline, or `wxops sync`)
#: finds a version the server created before it went away instead of making a second one.
REGISTRATION_TAG = "wxops.registration_id"
#: Outbox version tags naming a logged model (and its run) that the *server* holds: the
#: best configuration was logged before the server went away, registration after.
REMOTE_MODEL_TAG = "wxops.offline.remote_model_id"
REMOTE_MODEL_RUN_TAG = "wxops.offline.remote_model_run_id"
#: Source scheme of such an outbox version (the files are on the server, not here).
OFFLINE_SOURCE_SCHEME = "wxops-server"


@dataclass(frozen=True)
class Registration:
    """A registered model version and whether it took the champion alias."""

    name: str
    version: str
    became_champion: bool


def register_model(
    model_uri: str, name: str, *, tags: dict[str, str], run_id: str, first_as_champion: bool = True
) -> Registration:
    """Register ``model_uri`` as a new version; give it ``champion`` if none holds it.

    With ``first_as_champion=False`` every new version becomes ``challenger`` and the
    release cycle (``wxops.release``) decides about ``champion`` through the gate.
    A ``models:/m-...`` URI (an MLflow 3 logged model) is registered by its model id,
    which ties the version to the logged model and its run the way a server checks.

    When the server goes away, even half-way, the version is registered in the outbox
    (see :func:`wxops.tracking.connect`) and `wxops sync` registers it on the server as
    ``challenger``; a version the server created before it went away is found again by
    its registration id, never made twice. Any other failure after the version exists
    deletes it again, so a failed pipeline never leaves a half-registered model behind.
    """
    import uuid

    from mlflow.exceptions import MlflowException

    session.drain()
    all_tags = {**tags, REGISTRATION_TAG: uuid.uuid4().hex}

    def attempt(client: Any) -> Registration:
        source, source_run, version_tags = model_uri, run_id, dict(all_tags)
        model_id = logged_model_id(model_uri)
        if session.is_offline():
            source_run = session.rid(run_id)
            if model_id is not None and not _has_logged_model(client, model_id):
                # Logged on the server before it went away: the outbox cannot link to it,
                # so the version names it and `wxops sync` registers that very model.
                version_tags |= {REMOTE_MODEL_TAG: model_id, REMOTE_MODEL_RUN_TAG: run_id}
                source, model_id = f"{OFFLINE_SOURCE_SCHEME}:{model_uri}", None
        if REMOTE_MODEL_TAG not in version_tags:  # else sync records them from the server's copy
            version_tags[ARTIFACT_TAG] = json.dumps(model_artifact_digests(model_uri), sort_keys=True)
        version = None
        try:
            with contextlib.suppress(MlflowException):
                client.create_registered_model(name)
            version = client.create_model_version(
                name, source, run_id=source_run, tags=version_tags, model_id=model_id,
                await_creation_for=0)  # _wait_ready below
            _wait_ready(client, name, version.version)
            try:
                client.get_model_version_by_alias(name, CHAMPION)
                has_champion = True
            except MlflowException as exc:
                if session.unreachable(exc):
                    raise
                has_champion = False
            champion = first_as_champion and not has_champion
            client.set_registered_model_alias(name, CHAMPION if champion else CHALLENGER,
                                              version.version)
            return Registration(name, str(version.version), champion)
        except BaseException as exc:
            if version is not None and not session.unreachable(exc):
                with contextlib.suppress(MlflowException):
                    client.delete_model_version(name, version.version)
            raise

    try:
        return session.write(attempt)
    except MlflowException as exc:
        raise TrackingError(f"cannot register model '{name}': {exc}") from exc


def _has_logged_model(client: Any, model_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_logged_model(model_id)
    except MlflowException:
        return False
    return True


def _wait_ready(client: Any, name: str, version: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_model_version(name, version).status
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise TrackingError(f"model version {name}/{version} did not become READY ({status})")
        time.sleep(0.2)


def get_alias_version(name: str, alias: str) -> str | None:
    """Version number holding ``alias`` of registered model ``name``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return str(session.client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def get_model_version(name: str, version: str) -> dict[str, Any]:
    """A registered version as a plain dict; TrackingError says which versions exist."""
    from mlflow.exceptions import MlflowException

    client = session.client()
    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as exc:
        try:
            known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        except MlflowException:
            known = []
        raise TrackingError(
            f"model '{name}' has no version {version!r} (registered versions: "
            f"{known or 'none'}); `wxops history` lists them"
        ) from exc
    return {
        "name": name, "version": str(mv.version), "run_id": mv.run_id, "source": mv.source,
        "tags": dict(mv.tags), "aliases": list(mv.aliases), "description": mv.description or "",
        "created_ms": int(mv.creation_timestamp or 0), "status": mv.status,
    }


def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    """Set tags of a registered version (e.g. the gate's verdict)."""
    client = session.client()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def set_version_description(name: str, version: str, text: str) -> None:
    """Replace the description of a registered version (the release note)."""
    session.client().update_model_version(name, version, description=text)


def alias_map(name: str) -> dict[str, str]:
    """alias -> version of a registered model (empty when the model does not exist)."""
    from mlflow.exceptions import MlflowException

    try:
        model = session.client().get_registered_model(name)
    except MlflowException:
        return {}
    return {alias: str(v) for alias, v in (model.aliases or {}).items()}


def set_aliases(name: str, assignments: dict[str, str | None]) -> None:
    """Apply alias changes together: ``alias -> version`` (None deletes the alias).

    If one change fails, the ones already made are undone, so the registry is left as
    it was and TrackingError is raised.
    """
    from mlflow.exceptions import MlflowException

    client = session.client()
    before = alias_map(name)
    done: list[str] = []
    try:
        for alias, version in assignments.items():
            if version is None:
                if alias in before:
                    client.delete_registered_model_alias(name, alias)
            else:
                client.set_registered_model_alias(name, alias, str(version))
            done.append(alias)
    except MlflowException as exc:
        for alias in reversed(done):
            with contextlib.suppress(MlflowException):
                if alias in before:
                    client.set_registered_model_alias(name, alias, before[alias])
                else:
                    client.delete_registered_model_alias(name, alias)
        raise TrackingError(f"alias change on '{name}' failed and was undone: {exc}") from exc
