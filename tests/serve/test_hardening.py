"""Hostile and unusual requests against a real server on loopback: deep JSON, CSV, odd
times, the documented contract (with a bounded schemathesis run) and bad model references."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from tests.serve.conftest import ADMIN_TOKEN, Registry, example_frame, start_server
from wxops.serve import RunningServer


def test_deeply_nested_json_is_400(server: RunningServer, auth: dict[str, str]) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    for path, body in (("/predict", deep), ("/invocations", b'{"inputs": ' + deep + b"}"),
                       ("/predict", b'{"data": 1, "x": NaN, "y": ' + deep + b"}")):
        resp = requests.post(f"{server.url}{path}", data=body, headers=auth, timeout=10)
        assert resp.status_code == 400, (path, resp.text)
        assert "nested deeper than 1024 levels" in resp.json()["error"]


def test_text_csv_on_invocations(server: RunningServer, auth: dict[str, str]) -> None:
    frame = example_frame(4)
    frame["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    csv_headers = {**auth, "Content-Type": "text/csv"}
    as_json = requests.post(f"{server.url}/invocations", headers=auth, timeout=10,
                            json={"dataframe_split": frame.to_dict(orient="split")}).json()
    resp = requests.post(f"{server.url}/invocations", headers=csv_headers, timeout=10,
                         data=frame.to_csv(index=False))
    assert resp.status_code == 200, resp.text
    assert resp.json()["predictions"] == pytest.approx(as_json["predictions"])
    bad = {
        "": (400, "empty body"),
        'time,t2m\n"unclosed,1\n': (400, "malformed CSV"),
        frame.to_csv(index=False).replace("993.0", "", 1): (422, "pressure, row 0: missing value"),
        frame.assign(foo=1).to_csv(index=False): (422, "foo: unexpected column"),
        "\xff\xfe garbage": (422, "unexpected column"),
    }
    for body, (status, message) in bad.items():
        resp = requests.post(f"{server.url}/invocations", headers=csv_headers, timeout=10,
                             data=body.encode("utf-8", "surrogateescape"))
        assert resp.status_code == status, (body[:40], resp.text)
        assert re.search(message, resp.json()["error"]), resp.text


@pytest.mark.parametrize(("time", "message"), [
    ("99999-01-01", r"'99999-01-01' is outside the years \[1900, 2200\)"),
    ("1850-06-01T00:00:00Z", r"is outside the years"),
    (5, r"5 is not a time; send ISO 8601"),
    (True, r"expected an ISO 8601 time"),
    ("yesterday", r"cannot read 'yesterday'"),
])
def test_time_values_are_validated(server: RunningServer, auth: dict[str, str], time: object,
                                   message: str) -> None:
    record = example_frame(1).assign(time="x").to_dict(orient="records")[0]
    record["time"] = time
    resp = requests.post(f"{server.url}/predict", json=[record], headers=auth, timeout=10)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "time"
    assert re.search(message, resp.json()["error"]), resp.text


def test_classic_epoch_milliseconds_still_work(server: RunningServer, auth: dict[str, str]) -> None:
    resp = requests.post(f"{server.url}/predict", json={"data": example_frame(3).to_json()},
                         headers=auth, timeout=10)
    assert resp.status_code == 200, resp.text


def test_openapi_describes_the_model_and_every_status(server: RunningServer) -> None:
    doc = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    predict = doc["paths"]["/predict"]["post"]
    body = predict["requestBody"]["content"]["application/json"]["schema"]
    records = next(s for s in body["oneOf"] if s.get("type") == "array")
    t2m = records["items"]["properties"]["t2m"]
    assert (t2m["type"], t2m["minimum"], t2m["maximum"]) == ("number", -80.0, 60.0)
    assert records["items"]["properties"]["time"]["format"] == "date-time"
    assert "pressure" in records["items"]["required"]
    assert set(predict["responses"]) >= {"200", "400", "401", "403", "413", "422", "503"}
    assert "text/csv" in doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
    for path in ("/metrics", "/version"):
        assert set(doc["paths"][path]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert set(doc["paths"]["/admin/reload"]["post"]["responses"]) >= {"200", "401", "403", "502"}


def test_schemathesis_finds_no_5xx_and_no_contract_violation(
        server: RunningServer, auth: dict[str, str]) -> None:
    """A bounded property-based run of the served schema (loopback, ~30 valid and ~30
    invalid cases a route; WXOPS_FUZZ_EXAMPLES raises the count)."""
    calls = fuzz_openapi(server.url, auth)
    assert len(calls) >= 100 and not [c for c in calls if c >= 500]
    assert 200 in calls  # valid requests were answered, not only refused


def fuzz_openapi(url: str, headers: dict[str, str]) -> list[int]:
    """Every operation of the service's OpenAPI document with schemathesis' valid cases,
    and the prediction routes with invalid ones too; each answer is checked against the
    document (status, content type, response schema, no 5xx). Returns the statuses."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/invocations", "/model", "/ready"}
    calls: list[int] = []
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    bodies = ("/predict", "/invocations")  # invalid cases need a body to be invalid in
    for op, mode in ((op, mode) for op in operations for mode in modes
                     if op.path in bodies or mode is modes[0]):
        @settings(max_examples=int(os.environ.get("WXOPS_FUZZ_EXAMPLES", "30")), deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case: object) -> None:
            response = case.call_and_validate(base_url=url, headers=headers,  # type: ignore[attr-defined]
                                              checks=checks, timeout=10)
            calls.append(response.status_code)

        run()
    return calls


def _serve_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("wxops")
    return subprocess.run([str(exe), "serve", "--no-auth", "--port", "0", *args], cwd=folder,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(folder)})


def test_serve_refuses_an_unresolvable_model_at_start(registry: Registry, tmp_path: Path) -> None:
    for ref, message in (("visibility@nosuchalias",
                          r"has no alias 'nosuchalias'.*aliases of 'visibility': .*champion"),
                         ("nosuchmodel/3", r"'nosuchmodel' has no version 3")):
        done = _serve_cli(tmp_path, "--model", ref, "--tracking-uri", registry.uri)
        assert done.returncode == 1, done.stdout + done.stderr
        assert re.search(message, " ".join(done.stderr.split())), done.stderr
        assert "Traceback" not in done.stderr


def test_ready_reports_a_failed_later_reload(registry: Registry) -> None:
    client = MlflowClient(registry.uri, registry_uri=registry.uri)
    client.set_registered_model_alias("visibility", "readytest", "1")
    server = start_server(registry, model="visibility@readytest")
    try:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        client.delete_registered_model_alias("visibility", "readytest")
        resp = requests.post(f"{server.url}/admin/reload", headers=admin, timeout=30)
        assert resp.status_code == 502 and "still serving 1" in resp.json()["error"]
        ready = requests.get(f"{server.url}/ready", timeout=10).json()
        assert ready["model_version"] == "1"
        assert "no alias 'readytest'" in ready["last_reload_error"]
    finally:
        server.stop()
