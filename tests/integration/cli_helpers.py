"""Running the installed ``wxops`` command and ``wxops serve`` the way a user does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

WXOPS = str(Path(sys.executable).with_name("wxops"))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without MLflow URIs set by earlier in-process tests (the project's
    own store is used, as for a user in a fresh folder)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLFLOW_") and k != "WXOPS_SERVE_TOKENS"}
    env.update(COLUMNS="250", **extra)
    return env


def wxops(folder: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``wxops ARGS`` in ``folder``; stdout and stderr together in ``.stdout``."""
    return subprocess.run([WXOPS, *args], cwd=folder, env=clean_env(), capture_output=False,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(folder: Path, *args: str) -> Iterator[str]:
    """``wxops serve --no-auth ARGS`` on a free loopback port until ``/health`` answers."""
    port = free_port()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    proc = subprocess.Popen([WXOPS, "serve", "--tracking-uri", uri, "--port", str(port),
                             "--no-auth", *args], cwd=folder, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"wxops serve exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("wxops serve did not answer /health in 90 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_model(url: str, timeout: float = 90) -> dict[str, Any]:
    """``/ready`` once a model is loaded (its JSON), else TimeoutError with the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        resp = requests.get(url + "/ready", timeout=5)
        if resp.status_code == 200:
            return dict(resp.json())
        if time.monotonic() > deadline:
            raise TimeoutError(f"no model loaded: {resp.text}")
        time.sleep(0.3)


def registry(folder: Path) -> Any:
    """An MLflow client on the project's store, tracking and registry alike (an earlier
    test's ``MLFLOW_REGISTRY_URI`` must not redirect it)."""
    import mlflow

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return mlflow.MlflowClient(uri, registry_uri=uri)


def model_file(folder: Path, name: str, version: str) -> Path:
    """The ``model.pkl`` of a registered version in the project's local artifact store."""
    client = registry(folder)
    model_id = client.get_model_version(name, version).source.rpartition("/")[2]
    found = [p for p in folder.rglob("model.pkl") if model_id in p.parts]
    assert len(found) == 1, (model_id, found)
    return found[0]
