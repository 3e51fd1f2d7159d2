"""The service over real HTTP on a loopback port: formats, validation, auth, metadata."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

from tests.serve.conftest import ADMIN_TOKEN, PREDICT_TOKEN, Registry, example_frame
from wxops.serve import RunningServer
from wxops.serve.app import create_app
from wxops.serve.model import ModelHolder, ModelRef
from wxops.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def expected(registry: Registry) -> np.ndarray:
    """What the registered model itself predicts for example_frame(5) (MLflow's loader)."""
    import mlflow.sklearn

    mlflow.set_tracking_uri(registry.uri)
    return np.asarray(mlflow.sklearn.load_model("models:/visibility@champion").predict(
        example_frame(5)))


def post(server: RunningServer, path: str, payload: Any, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=payload, headers=headers, timeout=10)


# --- the classic client and the other /predict shapes --------------------------------------


def test_classic_client_gets_prediction_with_run_id(
    server: RunningServer, auth: dict[str, str], expected: np.ndarray, registry: Registry
) -> None:
    frame = example_frame(5)
    resp = post(server, "/predict", {"data": frame.to_json()}, auth)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model_version"] == "1"
    assert len(body["model_run_id"]) == 32
    assert resp.headers["X-Model-Version"] == "1"
    np.testing.assert_allclose(body["result"], expected, rtol=1e-9)


@pytest.mark.parametrize("shape", ["iso_string", "records", "columns", "split", "records_body",
                                   "columns_body"])
def test_predict_accepts_every_documented_shape(
    server: RunningServer, auth: dict[str, str], expected: np.ndarray, shape: str
) -> None:
    frame = example_frame(5)
    iso = frame.assign(time=frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    payload: object = {
        "iso_string": {"data": frame.to_json(date_format="iso")},
        "records": {"data": iso.to_dict(orient="records")},
        "columns": {"data": iso.to_dict(orient="list")},
        "split": {"data": json.loads(iso.to_json(orient="split"))},
        "records_body": iso.to_dict(orient="records"),
        "columns_body": iso.to_dict(orient="list"),
    }[shape]
    resp = post(server, "/predict", payload, auth)
    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json()["result"], expected, rtol=1e-9)


def test_time_with_utc_offset_is_converted_to_utc(
    server: RunningServer, auth: dict[str, str], expected: np.ndarray
) -> None:
    frame = example_frame(5)
    local = frame.assign(time=(frame["time"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
                               .map(lambda t: t.isoformat())))
    resp = post(server, "/predict", local.to_dict(orient="records"), auth)
    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json()["result"], expected, rtol=1e-9)


# --- MLflow's scoring protocol ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["dataframe_split", "dataframe_records", "instances", "inputs",
                                 "inputs_rows"])
def test_invocations_speaks_mlflow_protocol(
    server: RunningServer, auth: dict[str, str], expected: np.ndarray, key: str
) -> None:
    frame = example_frame(5).assign(time=lambda f: f["time"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    payload = {
        "dataframe_split": {"dataframe_split": frame.to_dict(orient="split")},
        "dataframe_records": {"dataframe_records": frame.to_dict(orient="records")},
        "instances": {"instances": frame.to_dict(orient="records")},
        "inputs": {"inputs": frame.to_dict(orient="list")},
        "inputs_rows": {"inputs": frame.to_numpy().tolist()},
    }[key]
    resp = post(server, "/invocations", payload, auth)
    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json()["predictions"], expected, rtol=1e-9)
    assert resp.headers["X-Model-Version"] == "1"


def test_invocations_fast_path_answers_like_the_precise_path(
    server: RunningServer, auth: dict[str, str]
) -> None:
    """100 rows of dataframe_split (read by the fast path) predict what the same rows as
    columns on /predict (the precise path) do; a JSON boolean among them is still refused
    with the field and row, not read as 1.0."""
    frame = example_frame(100).assign(time=lambda f: f["time"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    split = frame.to_dict(orient="split")
    fast = post(server, "/invocations", {"dataframe_split": split}, auth)
    precise = post(server, "/predict", frame.to_dict(orient="list"), auth)
    assert fast.status_code == precise.status_code == 200, fast.text
    assert fast.json()["predictions"] == precise.json()["result"]
    split["data"][57][split["columns"].index("rh")] = True
    resp = post(server, "/invocations", {"dataframe_split": split}, auth)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "rh"
    assert "rh, row 57: expected a number, got boolean true" in resp.json()["error"]


def test_mlflow_client_side_scoring_call(
    server: RunningServer, auth: dict[str, str], expected: np.ndarray
) -> None:
    """MLflow's own serializer and response parser, unchanged, against /invocations."""
    from mlflow.deployments import PredictionsResponse
    from mlflow.utils.proto_json_utils import dump_input_data

    resp = requests.post(f"{server.url}/invocations", data=dump_input_data(example_frame(5)),
                         headers={**auth, "Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 200, resp.text
    predictions = PredictionsResponse.from_json(resp.text).get_predictions(
        predictions_format="ndarray")
    np.testing.assert_allclose(predictions, expected, rtol=1e-9)


def test_mlflow_scoring_server_client_without_auth(
    registry: Registry, expected: np.ndarray
) -> None:
    """MLflow's ScoringServerClient (no auth header support) against a --no-auth server."""
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    from tests.serve.conftest import start_server

    srv = start_server(registry, auth=False, token_file=None)
    try:
        client = ScoringServerClient("127.0.0.1", srv.port)
        client.wait_server_ready(timeout=30)
        result = client.invoke(example_frame(5)).get_predictions(predictions_format="ndarray")
        np.testing.assert_allclose(result, expected, rtol=1e-9)
    finally:
        srv.stop()


# --- bad input: every kind is a 4xx naming the field and the problem -----------------------------


def _good() -> list[dict[str, object]]:
    frame = example_frame(3).assign(time=lambda f: f["time"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    return frame.to_dict(orient="records")


def _good_any() -> Any:
    return _good()


def _with(row: int, **values: object) -> list[dict[str, object]]:
    records = _good()
    records[row].update(values)
    return records


def _without(column: str) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != column} for r in _good()]


BAD_JSON_BODIES = [
    ("missing column", _without("pressure"), 422, "pressure", "missing column"),
    ("extra column", _with(0, snow_depth=3.0), 422, "snow_depth", "unexpected column"),
    ("string for number", _with(1, t2m="warm"), 422, "t2m", "row 1: expected a number, got string"),
    ("boolean for number", _with(0, rh=True), 422, "rh", "expected a number, got boolean true"),
    ("null value", _with(2, wind_speed=None), 422, "wind_speed", "row 2: missing value"),
    ("above range", _with(0, t2m=75.0), 422, "t2m", r"outside the physical range \[-80, 60\]"),
    ("below range", _with(1, wind_speed=-1.0), 422, "wind_speed", "outside the physical range"),
    ("bad time", _with(0, time="yesterday"), 422, "time", "cannot read 'yesterday'"),
    ("no rows", [], 422, None, "no rows"),
    ("scalar body", 42, 400, None, "expected records"),
    ("array for number", _with(0, pressure=[1000.0]), 422, "pressure", "got an array"),
    ("wrapper with extra key", {"data": _good(), "mode": "fast"}, 400, "mode", "unexpected keys"),
    ("ragged columns", {"data": {"t2m": [1.0, 2.0], "td2m": [1.0]}}, 422, "td2m", "has 1 values"),
    ("bad data string", {"data": "{not json"}, 400, None, "malformed JSON"),
]


@pytest.mark.parametrize(("payload", "status", "field", "message"),
                         [b[1:] for b in BAD_JSON_BODIES], ids=[b[0] for b in BAD_JSON_BODIES])
def test_bad_input_is_4xx_naming_field_and_problem(
    server: RunningServer, auth: dict[str, str], payload: object, status: int,
    field: str | None, message: str,
) -> None:
    resp = post(server, "/predict", payload, auth)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["field"] == field
    assert body["status"] == status
    import re

    assert re.search(message, body["error"]), body["error"]


def _raw_row(t2m_literal: str) -> bytes:
    """One full row whose t2m is a Python-json literal such as NaN or Infinity."""
    row = {**_good()[0], "t2m": "__T2M__"}
    return json.dumps([row]).replace('"__T2M__"', t2m_literal).encode()


@pytest.mark.parametrize(("raw", "status", "field", "message"), [
    (b"", 400, None, "empty body"),
    (b"   ", 400, None, "empty body"),
    (b'{"data": [1, 2', 400, None, "malformed json"),
    (_raw_row("NaN"), 422, "t2m", "nan is not a finite number"),
    (_raw_row("-Infinity"), 422, "t2m", "-inf is not a finite number"),
    (b"\xff\xfe", 400, None, "malformed json"),
], ids=["empty", "blank", "truncated", "nan", "inf", "not utf-8"])
def test_bad_raw_bodies(
    server: RunningServer, auth: dict[str, str], raw: bytes, status: int, field: str | None,
    message: str,
) -> None:
    resp = requests.post(f"{server.url}/predict", data=raw,
                         headers={**auth, "Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == status, resp.text
    assert resp.json()["field"] == field
    assert message in resp.json()["error"].lower()


def test_body_over_limit_is_413(server: RunningServer, auth: dict[str, str]) -> None:
    big = example_frame(2000)  # ~300 kB of JSON > the 64 kB limit of this server
    resp = post(server, "/predict", {"data": big.to_json()}, auth)
    assert resp.status_code == 413
    assert "over the limit of 65536 bytes" in resp.json()["error"]


def test_chunked_body_over_limit_is_413(server: RunningServer, auth: dict[str, str]) -> None:
    def chunks() -> Any:
        yield b'{"data": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    resp = requests.post(f"{server.url}/predict", data=chunks(), headers=auth, timeout=10)
    assert resp.status_code == 413


@pytest.mark.parametrize(("payload", "message"), [
    ({"dataframe_split": {"data": [[1.0]]}}, "needs 'columns' and 'data'"),
    ({"dataframe_records": {"t2m": 1.0}}, "must be a list of records"),
    ({"inputs": [[1.0, 2.0]]}, "expected 9 values"),
    ({"instances": [], "inputs": []}, "exactly one of"),
    ({"frames": []}, "unknown keys"),
    ({"dataframe_records": [], "params": {"k": 1}}, "takes no params"),
    ([1, 2], "expected a JSON object"),
])
def test_invocations_bad_input(server: RunningServer, auth: dict[str, str], payload: object,
                               message: str) -> None:
    resp = post(server, "/invocations", payload, auth)
    assert 400 <= resp.status_code < 500, resp.text
    assert message in resp.json()["error"]


def test_fuzzed_bodies_never_cause_5xx(server: RunningServer, auth: dict[str, str]) -> None:
    rng = np.random.default_rng(3)
    good = json.dumps(_good()).encode()
    for _ in range(150):
        body = bytearray(good)
        for _ in range(int(rng.integers(1, 6))):
            pos = int(rng.integers(0, len(body)))
            body[pos] = int(rng.integers(32, 127))
        for path in ("/predict", "/invocations"):
            resp = requests.post(f"{server.url}{path}", data=bytes(body),
                                 headers={**auth, "Content-Type": "application/json"}, timeout=10)
            assert resp.status_code < 500, (bytes(body), resp.text)


# --- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "status", "message"), [
    ({}, 401, "missing bearer token"),
    ({"Authorization": "Bearer wrong-token-0123456789"}, 401, "invalid bearer token"),
    ({"Authorization": f"Basic {PREDICT_TOKEN}"}, 401, "must be 'Bearer <token>'"),
    ({"Authorization": "Bearer "}, 401, "must be 'Bearer <token>'"),
])
def test_predict_needs_a_valid_token(server: RunningServer, headers: dict[str, str], status: int,
                                     message: str) -> None:
    resp = post(server, "/predict", _good(), headers)
    assert resp.status_code == status
    assert message in resp.json()["error"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_admin_scope_is_required_for_reload(
    server: RunningServer, auth: dict[str, str], admin: dict[str, str]
) -> None:
    assert post(server, "/admin/reload", None, {}).status_code == 401
    denied = post(server, "/admin/reload", None, auth)
    assert denied.status_code == 403
    assert "lacks the 'admin' scope" in denied.json()["error"]
    ok = post(server, "/admin/reload", None, admin)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"swapped": False, "model_version": "1", "previous_version": "1",
                         "model_run_id": ok.json()["model_run_id"]}


def test_tokens_never_reach_logs_or_the_prediction_log(
    server: RunningServer, auth: dict[str, str], admin: dict[str, str], predlog_path: Path,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    post(server, "/predict", _good(), auth)
    post(server, "/predict", _good(), {"Authorization": "Bearer not-a-real-token-12345"})
    post(server, "/admin/reload", None, admin)
    time.sleep(0.5)  # one flush of the prediction log
    out, err = capfd.readouterr()
    logged = caplog.text + out + err + predlog_path.read_bytes().decode("latin-1")
    for secret in (PREDICT_TOKEN, ADMIN_TOKEN, "not-a-real-token-12345"):
        assert secret not in logged


# --- metadata, health, metrics, docs -------------------------------------------------------------


def test_health_ready_and_model(server: RunningServer, auth: dict[str, str],
                                registry: Registry) -> None:
    assert requests.get(f"{server.url}/health", timeout=5).json() == {"status": "ok", "auth": True}
    assert requests.get(f"{server.url}/ready", timeout=5).json()["model_version"] == "1"
    assert requests.get(f"{server.url}/model", timeout=5).status_code == 401
    info = requests.get(f"{server.url}/model", headers=auth, timeout=5).json()
    assert info["name"] == "visibility" and info["version"] == "1"
    assert info["following"] == "visibility@champion"
    assert [c["name"] for c in info["signature"]["inputs"]][:2] == ["time", "t2m"]
    assert len(info["data_digest"]) == 64 and len(info["training_data_digest"]) == 64
    assert info["predict_path"] == "numpy"
    assert info["loaded_at"].endswith("+00:00")


def test_metrics_in_prometheus_format(server: RunningServer, auth: dict[str, str]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    post(server, "/predict", _good(), auth)
    post(server, "/predict", _with(0, t2m=99.0), auth)
    time.sleep(0.4)  # predicted values are counted by the background flush
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests_total = {(s.labels["endpoint"], s.labels["status"]): s.value
                      for s in families["wxops_requests"].samples if s.name.endswith("_total")}
    assert requests_total[("/predict", "200")] >= 1
    assert requests_total[("/predict", "422")] >= 1
    latency = [s for s in families["wxops_request_duration_seconds"].samples
               if s.name.endswith("_count") and s.labels["endpoint"] == "/predict"]
    assert {s.labels["status"] for s in latency} >= {"200", "422"}
    counts = [s.value for s in families["wxops_predicted_value"].samples
              if s.name.endswith("_count")]
    assert counts and counts[0] >= 3
    info = [s for s in families["wxops_model_info"].samples if s.value == 1]
    assert [(s.labels["name"], s.labels["version"]) for s in info] == [("visibility", "1")]


def test_openapi_docs(server: RunningServer) -> None:
    spec = requests.get(f"{server.url}/openapi.json", timeout=5).json()
    assert {"/predict", "/invocations", "/model", "/metrics", "/admin/reload"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "classic" in spec["paths"]["/predict"]["post"]["requestBody"]["content"][
        "application/json"]["examples"]
    assert requests.get(f"{server.url}/docs", timeout=5).status_code == 200


def test_prediction_log_holds_inputs_outputs_and_version(
    server: RunningServer, auth: dict[str, str], predlog_path: Path
) -> None:
    marker = 12.345
    resp = post(server, "/predict", _with(0, t2m=marker), auth)
    assert resp.status_code == 200
    deadline = time.monotonic() + 5
    rows: list[tuple[str, str, int, str, str]] = []
    while time.monotonic() < deadline and not rows:
        time.sleep(0.1)
        with sqlite3.connect(predlog_path) as conn:
            rows = conn.execute("SELECT endpoint, model_version, n_rows, inputs, outputs FROM "
                                "predictions WHERE inputs LIKE ?", (f"%{marker}%",)).fetchall()
    assert rows, "request not in the prediction log"
    endpoint, version, n_rows, inputs, outputs = rows[0]
    assert (endpoint, version, n_rows) == ("/predict", "1", 3)
    assert json.loads(inputs)["t2m"][0] == marker
    assert pd.Timestamp(json.loads(inputs)["time"][0], unit="ms") == pd.Timestamp(
        "1988-01-01T06:00:00")
    np.testing.assert_allclose(json.loads(outputs), resp.json()["result"])


def test_model_not_loaded_is_503_not_500(registry: Registry) -> None:
    """A reference that does not resolve: the service runs, says why, and predicts nothing."""
    from wxops.serve.server import run_in_thread

    settings = ServeSettings(tracking_uri=registry.uri, port=0, poll_seconds=0, auth=False,
                             model="visibility@no-such-alias")
    srv = run_in_thread(create_app(settings, ModelHolder(ModelRef("visibility", "no-such-alias")),
                                   tokens=None))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            resp = requests.get(f"{srv.url}/ready", timeout=5)
            if "no alias" in resp.text:
                break
            time.sleep(0.05)
        assert resp.status_code == 503
        assert "has no alias 'no-such-alias'" in resp.json()["error"]
        pred = requests.post(f"{srv.url}/predict", json=_good_any(), timeout=5)
        assert pred.status_code == 503
    finally:
        srv.stop()


def test_big_batch_runs_off_the_event_loop(registry: Registry, auth: dict[str, str]) -> None:
    """With an inline bound of 0 every prediction goes to the pool, and answers correctly."""
    import mlflow.sklearn

    from tests.serve.conftest import start_server

    srv = start_server(registry, inline_ms=0.0)
    try:
        frame = example_frame(500)
        resp = post(srv, "/predict", {"data": frame.to_json()}, auth)
        assert resp.status_code == 200, resp.text
        want = mlflow.sklearn.load_model("models:/visibility/1").predict(frame)
        np.testing.assert_allclose(resp.json()["result"], want, rtol=1e-9)
        assert pd.Series(resp.json()["result"]).notna().all()
        metrics = requests.get(f"{srv.url}/metrics", timeout=5).text
        assert 'wxops_predictions_total{where="pool"} 1.0' in metrics
    finally:
        srv.stop()
