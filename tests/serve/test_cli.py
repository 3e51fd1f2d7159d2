"""``wxops serve`` as a user runs it: a subprocess, one or two workers, real sockets."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import typer
from typer.testing import CliRunner

from tests.serve.conftest import ADMIN_TOKEN, PREDICT_TOKEN, Registry, example_frame, ready_process
from wxops.serve.cli import register

_LAUNCH = ("import sys, typer; from wxops.serve.cli import register; app = typer.Typer(); "
           "register(app); app.command('noop')(lambda: None); app()")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(registry: Registry, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = _free_port()
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})}
    environ.pop("WXOPS_SERVE_TOKENS", None) if env is None else None
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, "serve", "--tracking-uri", registry.uri,
         "--port", str(port), "--token-file", str(registry.token_file), *args],
        env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with ready_process(proc, f"http://127.0.0.1:{port}", within=60) as url:
        yield url


def _p50(url: str, n: int = 60) -> float:
    payload = {"data": example_frame(1).to_json()}
    headers = {"Authorization": f"Bearer {PREDICT_TOKEN}"}
    times = []
    with requests.Session() as session:  # one keep-alive connection
        for _ in range(n):
            start = time.perf_counter()
            resp = session.post(f"{url}/predict", json=payload, headers=headers, timeout=10)
            times.append(time.perf_counter() - start)
            assert resp.status_code == 200
    return statistics.median(times[5:])


@pytest.mark.slow
def test_two_workers_share_a_port_without_the_delayed_ack_stall(registry: Registry) -> None:
    """Regression test for the ~40 ms Nagle/delayed-ACK stall at one connection."""
    with serving(registry, "--workers", "2", "--poll", "0") as url:
        p50 = _p50(url)
        assert p50 < 0.025, f"p50 {p50 * 1e3:.1f} ms at one connection: delayed-ACK stall?"
        # a reload reaches both workers; metrics cover both
        reload = requests.post(f"{url}/admin/reload",
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
        assert reload.status_code == 200, reload.text
        text = requests.get(f"{url}/metrics", timeout=5).text
        assert 'wxops_model_info{name="visibility",run_id=' in text
        assert 'wxops_requests_total{endpoint="/predict",method="POST",status="200"}' in text


@pytest.mark.slow
def test_cli_serves_the_champion_with_a_sqlite_log(registry: Registry, tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    with serving(registry, "--prediction-log", str(log), "--flush-seconds", "0.1") as url:
        resp = requests.post(f"{url}/predict", json={"data": example_frame(2).to_json()},
                             headers={"Authorization": f"Bearer {PREDICT_TOKEN}"}, timeout=10)
        assert resp.status_code == 200
        assert resp.json()["model_version"] == "1"
    import sqlite3

    with sqlite3.connect(log) as conn:
        assert conn.execute("SELECT n_rows FROM predictions").fetchall() == [(2,)]


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    return app


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "visibility"], "write NAME@ALIAS"),
    (["--no-auth", "--host", "0.0.0.0"], "--no-auth is for local use only"),
    (["--log-format", "csv"], "use sqlite or parquet"),
    ([], "no bearer token configured"),
])
def test_cli_refuses_bad_settings(args: list[str], message: str, registry: Registry,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WXOPS_SERVE_TOKENS", raising=False)
    result = CliRunner().invoke(_app(), ["serve", "--tracking-uri", registry.uri, *args])
    assert result.exit_code == 1
    assert message in result.output


def test_cli_reports_a_port_in_use(registry: Registry) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(_app(), [
            "serve", "--tracking-uri", registry.uri, "--token-file", str(registry.token_file),
            "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
