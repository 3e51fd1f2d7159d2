"""A loopback HTTP proxy in front of a real team server that kills it at a chosen request.

The client (the real ``wxops`` CLI) talks to the proxy's URL; the proxy forwards every
request to the server unchanged until the first one matching ``kill_on`` arrives, then
kills the server's whole process group (SIGKILL, as a crash or a pulled plug would) and
drops that connection. While the server is down the proxy drops connections too, so the
client sees exactly what it would see with the server gone; after ``server.start()`` on
the same port the proxy forwards again. Nothing is faked: every answer comes from the
real MLflow server.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


class KillingProxy:
    """Forward to ``upstream_port``; SIGKILL the server of ``state`` at the first ``kill_on``.

    ``kill_on`` is a regular expression searched in ``"METHOD PATH BODY"`` of each request.
    """

    def __init__(self, upstream_port: int, state: Path, kill_on: str | None) -> None:
        self.upstream_port = upstream_port
        self.state = state
        self.pattern = re.compile(kill_on) if kill_on else None
        self.killed_at: str | None = None
        self.seen: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                line = f"{self.command} {self.path}"
                text = f"{line} {body[:4000].decode('utf-8', 'replace')}"
                with proxy._lock:
                    proxy.seen.append(line)
                    kill = (proxy.killed_at is None and proxy.pattern is not None
                            and proxy.pattern.search(text) is not None)
                    if kill:
                        proxy.killed_at = line
                        proxy.kill_server()
                if kill:
                    self.close_connection = True
                    return  # no answer: the connection just drops
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    conn.close()
                except OSError:
                    self.close_connection = True
                    return  # server down: drop the connection like a dead host would
                self.send_response(resp.status, resp.reason)
                for key, value in resp.getheaders():
                    if key.lower() not in _HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def kill_server(self) -> None:
        pid = json.loads((self.state / "server.json").read_text())["pid"]
        os.killpg(pid, signal.SIGKILL)

    @property
    def killed(self) -> bool:
        return self.killed_at is not None


@contextmanager
def killing_proxy(upstream_port: int, state: Path, kill_on: str | None) -> Iterator[KillingProxy]:
    """A running :class:`KillingProxy`, shut down afterwards."""
    proxy = KillingProxy(upstream_port, state, kill_on)
    proxy.thread.start()
    try:
        yield proxy
    finally:
        proxy.httpd.shutdown()
        proxy.httpd.server_close()
