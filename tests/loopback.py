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


RECEIVER = '''
import http.server, json, sys
out = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "a") as fh:
            fh.write(json.dumps({"path": self.path, "type": self.headers.get("Content-Type"),
                                 "body": json.loads(body)}) + "\\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


@dataclass
class Receiver:
    """A webhook receiver: every POST's JSON body, one per line of ``log``."""

    url: str
    log: Path

    def messages(self) -> list[dict[str, object]]:
        import json

        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def webhook_receiver(folder: Path) -> Iterator[Receiver]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "receiver.py").write_text(RECEIVER)
    port = free_port()
    log = folder / "posts.jsonl"
    proc = subprocess.Popen([sys.executable, str(folder / "receiver.py"), str(port), str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port, proc)
        yield Receiver(f"http://127.0.0.1:{port}/hooks/secret-token-123", log)
    finally:
        stop(proc)


SMTPD = '''
import mailbox, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
box = mailbox.Maildir(maildir, create=True)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        box.add(envelope.original_content)
        return "250 OK"

def check(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \\
        and auth_data.password.decode() == password
    return AuthResult(success=ok, handled=False)

controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=check,
                        auth_required=True, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
controller.start()
while True:
    time.sleep(3600)
'''


@dataclass
class SMTPReceiver:
    """aiosmtpd on loopback, login required; received mail lands in a Maildir."""

    host: str
    port: int
    maildir: Path
    user: str
    password: str

    def messages(self) -> list[object]:
        import mailbox

        if not self.maildir.exists():
            return []
        return list(mailbox.Maildir(str(self.maildir), create=False))


@contextlib.contextmanager
def smtp_receiver(folder: Path, user: str = "wxops", password: str = "smtp-pass-456") -> Iterator[SMTPReceiver]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "smtpd.py").write_text(SMTPD)
    port = free_port()
    maildir = folder / "Maildir"
    proc = subprocess.Popen([sys.executable, str(folder / "smtpd.py"), str(port), str(maildir), user, password],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port, proc)
        yield SMTPReceiver("127.0.0.1", port, maildir, user, password)
    finally:
        stop(proc)
