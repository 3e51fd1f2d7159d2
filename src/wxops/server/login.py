"""``wxops login``: check a user's password against the server, then store it where MLflow looks.

MLflow's HTTP client reads ``~/.mlflow/credentials`` (``[mlflow]`` section with
``mlflow_tracking_username`` / ``mlflow_tracking_password``) when the environment has no
credentials, so after a login every MLflow client of this user (wxops, notebooks, the
``mlflow`` CLI) authenticates without further setup. Nothing is written when the login fails.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from wxops.errors import LoginError


def credentials_path() -> Path:
    """MLflow's credentials file of this user (``HOME`` decides, as for MLflow)."""
    return Path(os.path.expanduser("~")) / ".mlflow" / "credentials"


def _request(url: str, username: str, password: str, method: str = "GET",
             body: dict[str, str] | None = None, timeout: float = 10.0) -> int:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LoginError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}; check the URL and "
                         "that the server runs") from exc


def check_login(url: str, username: str, password: str) -> None:
    """Raise LoginError unless the server accepts ``username``/``password``."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise LoginError(f"{url!r} is not a server URL: give http(s)://HOST:PORT")
    status = _request(f"{base}/api/2.0/mlflow/users/current", username, password)
    if status == 404:  # older auth apps: any authenticated read proves the password
        status = _request(f"{base}/api/2.0/mlflow/experiments/search?max_results=1", username, password)
    if status == 401:
        raise LoginError(f"login to {base} refused: wrong user name or password for '{username}'")
    if status >= 400 and status != 403:
        raise LoginError(f"{base} answered HTTP {status} to the login check; is it an MLflow server?")


def change_password(url: str, username: str, old: str, new: str) -> None:
    """Change the user's own password through MLflow's auth API."""
    from wxops.server.users import MIN_PASSWORD

    if len(new) < MIN_PASSWORD:
        raise LoginError(f"new password too short: use at least {MIN_PASSWORD} characters")
    status = _request(f"{url.rstrip('/')}/api/2.0/mlflow/users/update-password", username, old,
                      method="PATCH", body={"username": username, "password": new, "current_password": old})
    if status != 200:
        raise LoginError(f"the server refused the password change (HTTP {status})")


def write_credentials(username: str, password: str) -> Path:
    """Write MLflow's credentials file with mode 0600, keeping its other sections."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    parser = configparser.ConfigParser(interpolation=None)
    if path.exists():
        parser.read(path, encoding="utf-8")
    # MLflow reads the file with %-interpolation: a literal % must be doubled.
    parser["mlflow"] = {"mlflow_tracking_username": username.replace("%", "%%"),
                        "mlflow_tracking_password": password.replace("%", "%%")}
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        parser.write(fh)
    os.replace(tmp, path)
    return path


def login(url: str, username: str, password: str, *, new_password: str | None = None) -> Path:
    """Check the login (and change the password if asked), then store the credentials."""
    check_login(url, username, password)
    if new_password is not None:
        change_password(url, username, password, new_password)
        password = new_password
        check_login(url, username, password)
    return write_credentials(username, password)
