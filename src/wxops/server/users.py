"""Users and permissions through MLflow's own auth API (never its database directly).

The admin client reads the admin password from the 0600 file ``wxops server start``
wrote, so an operator never types or sees it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wxops.errors import ServerError
from wxops.server.process import ADMIN_USER, PERMISSIONS, admin_password_file, read_info

#: MLflow's auth app refuses shorter passwords.
MIN_PASSWORD = 12


@contextlib.contextmanager
def credentials(username: str, password: str) -> Iterator[None]:
    """Use ``username``/``password`` for MLflow HTTP calls inside the block only."""
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    before = {k: os.environ.get(k) for k in keys}
    os.environ["MLFLOW_TRACKING_USERNAME"] = username
    os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def server_url(state: Path, url: str | None) -> str:
    """``url`` when given, else the server started from ``state``."""
    if url:
        return url.rstrip("/")
    info = read_info(state)
    if info is None:
        raise ServerError(f"no server runs from {state}; start one (`wxops server start`) or give --url")
    return info.url


def admin_password(state: Path) -> str:
    path = admin_password_file(state)
    if not path.exists():
        raise ServerError(f"{path} not found: the admin password is written by `wxops server start` "
                          "(use --state-dir if the server was started with one)")
    return path.read_text(encoding="utf-8").strip()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ServerError(f"password too short: use at least {MIN_PASSWORD} characters")


def _auth_client(url: str) -> Any:
    from mlflow.server import get_app_client

    return get_app_client("basic-auth", tracking_uri=url)


def _explain(exc: Exception, what: str) -> ServerError:
    from mlflow.exceptions import MlflowException

    code = exc.error_code if isinstance(exc, MlflowException) else ""
    message = exc.message if isinstance(exc, MlflowException) else str(exc)
    return ServerError(f"{what}: {code} {message}".replace("  ", " "))


def add_user(state: Path, url: str | None, username: str, password: str) -> None:
    """Create ``username``; ServerError when it exists or the server refuses."""
    from mlflow.exceptions import MlflowException

    check_password(password)
    target = server_url(state, url)
    with credentials(ADMIN_USER, admin_password(state)):
        try:
            _auth_client(target).create_user(username, password)
        except MlflowException as exc:
            raise _explain(exc, f"cannot create user '{username}' at {target}") from exc


def _require_user(client: Any, username: str, target: str) -> None:
    """ServerError naming ``username`` when the server does not know it."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_user(username)
    except MlflowException as exc:
        raise ServerError(f"unknown user '{username}' at {target}; `wxops server add-user` first") from exc


def set_password(state: Path, url: str | None, username: str, password: str) -> None:
    """Set a user's password as admin; ServerError names an unknown user."""
    from mlflow.exceptions import MlflowException

    check_password(password)
    target = server_url(state, url)
    with credentials(ADMIN_USER, admin_password(state)):
        client = _auth_client(target)
        _require_user(client, username, target)
        try:
            client.update_user_password(username, password)
        except MlflowException as exc:
            raise _explain(exc, f"cannot change the password of '{username}'") from exc


def grant(state: Path, url: str | None, username: str, target_name: str, permission: str, *,
          model: bool = False) -> str:
    """Give ``username`` ``permission`` on an experiment (by name) or a registered model.

    Creates the permission or updates an existing one; returns what was done.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    permission = permission.upper()
    if permission not in PERMISSIONS:
        raise ServerError(f"permission {permission!r} is not one of {', '.join(PERMISSIONS)}")
    target = server_url(state, url)
    with credentials(ADMIN_USER, admin_password(state)):
        auth = _auth_client(target)
        _require_user(auth, username, target)
        try:
            if model:
                mlflow.MlflowClient(tracking_uri=target, registry_uri=target).get_registered_model(target_name)
                key: str = target_name
            else:
                exp = mlflow.MlflowClient(tracking_uri=target).get_experiment_by_name(target_name)
                if exp is None:
                    raise ServerError(f"no experiment '{target_name}' at {target} (for a registered model "
                                      "add --model)")
                key = str(exp.experiment_id)
        except MlflowException as exc:
            raise ServerError(f"no registered model '{target_name}' at {target}") from exc
        kind = "model" if model else "experiment"
        try:
            replaced = _grant(auth, username, "registered_model" if model else "experiment", key, permission)
        except MlflowException as exc:
            raise _explain(exc, f"cannot grant {permission} on '{target_name}'") from exc
        if replaced:
            return f"changed {username}'s permission on {kind} '{target_name}' to {permission}"
        return f"granted {permission} on {kind} '{target_name}' to {username}"


def _grant(auth: Any, username: str, resource_type: str, key: str, permission: str) -> bool:
    """Create or replace one grant; True when one existed. Handles both auth client APIs."""
    from mlflow.exceptions import MlflowException

    if hasattr(auth, "grant_user_permission"):  # MLflow >= 3.10: one call for every resource type
        try:
            auth.grant_user_permission(username, resource_type, key, permission)
            return False
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        auth.revoke_user_permission(username, resource_type, key)
        auth.grant_user_permission(username, resource_type, key, permission)
        return True
    prefix = "registered_model" if resource_type == "registered_model" else "experiment"
    try:
        getattr(auth, f"create_{prefix}_permission")(key, username, permission)
        return False
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    getattr(auth, f"update_{prefix}_permission")(key, username, permission)
    return True
