"""Real servers on loopback for the remote-data and notification tests.

Each helper starts a real process (Python's ``http.server``, moto's S3 server) on a free
port of 127.0.0.1 in its own process group and stops it by that group, so nothing
outlives the test that started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class HTTPFolder:
    """A folder served by ``python -m http.server``; its access log counts the requests."""

    url: str
    root: Path
    log: Path

    def requests(self, method: str, name: str) -> int:
        """How many ``method`` requests for ``/name`` the server answered."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return sum(1 for line in text.splitlines() if f'"{method} /{name} ' in line)


@contextlib.contextmanager
def http_folder(root: Path, log: Path) -> Iterator[HTTPFolder]:
    port = free_port()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_port(port, proc)
        yield HTTPFolder(f"http://127.0.0.1:{port}", root, log)
    finally:
        stop(proc)


@dataclass
class S3Server:
    """moto's S3 server: the endpoint and the environment a client needs to reach it."""

    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def put(self, bucket: str, key: str, data: bytes) -> None:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key=key, Body=data)


@contextlib.contextmanager
def moto_s3(log: Path) -> Iterator[S3Server]:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        import pytest

        pytest.skip("moto_server not installed (pip install -e '.[test]' installs moto[server])")
    with log.open("wb") as sink:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, proc)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        stop(proc)
