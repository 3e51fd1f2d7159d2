"""A probability version served: named probabilities per threshold, equal to pyfunc's.

The version is a real pipeline's ``type: probability`` model (a small gradient-boosting
classifier per threshold) registered as ``visibility-prob`` in the serve registry.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import requests

from tests.probability_version import ProbabilityVersion, register_probability_version
from tests.serve.conftest import PREDICT_TOKEN, Registry, example_frame, start_server
from tests.serve.test_cli import serving
from tests.serve.test_hardening import fuzz_openapi
from wxops.serve import RunningServer
from wxops.serve.settings import PredictionLogSettings

COLUMNS = ["p_below_1000", "p_below_5000"]
AUTH = {"Authorization": f"Bearer {PREDICT_TOKEN}"}


@pytest.fixture(scope="module")
def prob_version(registry: Registry) -> ProbabilityVersion:
    return register_probability_version(registry.run_id, registry.uri, base="visibility")


@pytest.fixture(scope="module")
def prob_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prob-log") / "predictions.db"


@pytest.fixture(scope="module")
def prob_server(registry: Registry, prob_version: ProbabilityVersion,
                prob_log: Path) -> Iterator[RunningServer]:
    srv = start_server(registry, model=f"{prob_version.name}/{prob_version.version}",
                       prediction_log=PredictionLogSettings(path=prob_log, flush_seconds=0.1))
    yield srv
    srv.stop()


def _rows(n: int = 48) -> pd.DataFrame:
    """Rows spanning dry and humid, clear and overcast hours (fog and no fog)."""
    frame = example_frame(n)
    frame["rh"] = np.linspace(55.0, 100.0, n)
    frame["td2m"] = frame["t2m"] - np.linspace(8.0, 0.0, n)
    return frame


def _pyfunc(version: ProbabilityVersion, frame: pd.DataFrame) -> pd.DataFrame:
    model = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    return pd.DataFrame(model.predict(frame))


def test_served_probabilities_equal_pyfunc(prob_server: RunningServer,
                                           prob_version: ProbabilityVersion) -> None:
    frame = _rows()
    want = _pyfunc(prob_version, frame)
    assert list(want.columns) == COLUMNS
    assert (want["p_below_1000"] <= want["p_below_5000"]).all()
    assert want["p_below_5000"].std() > 0  # the rows do not all get one probability
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    resp = requests.post(f"{prob_server.url}/predict", json=records, headers=AUTH, timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model_name"] == prob_version.name
    assert body["model_version"] == prob_version.version
    served = pd.DataFrame(body["result"])
    assert list(served.columns) == COLUMNS
    np.testing.assert_allclose(served.to_numpy(), want.to_numpy(), rtol=1e-12, atol=0)

    split = json.loads(frame.to_json(orient="split", date_format="iso", index=False))
    resp = requests.post(f"{prob_server.url}/invocations", json={"dataframe_split": split},
                         headers=AUTH, timeout=30)
    assert resp.status_code == 200, resp.text
    predictions = resp.json()["predictions"]  # MLflow's answer for a data frame: records
    assert set(predictions[0]) == set(COLUMNS)
    np.testing.assert_allclose(pd.DataFrame(predictions)[COLUMNS].to_numpy(), want.to_numpy(),
                               rtol=1e-12, atol=0)


def test_model_and_openapi_describe_the_probabilities(prob_server: RunningServer) -> None:
    info = requests.get(f"{prob_server.url}/model", headers=AUTH, timeout=10).json()
    assert info["outputs"]["kind"] == "probability"
    assert info["outputs"]["event"] == "below"
    assert info["outputs"]["thresholds"] == [1000.0, 5000.0]
    assert info["outputs"]["columns"] == COLUMNS
    assert info["predict_path"] == "numpy"  # the compiled path, checked against its predict
    doc = requests.get(f"{prob_server.url}/openapi.json", timeout=10).json()
    ok = doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    row = ok["schema"]["properties"]["result"]["items"]
    assert row["required"] == COLUMNS
    assert row["properties"]["p_below_1000"]["maximum"] == 1
    assert "1000" in row["properties"]["p_below_1000"]["description"]
    inv = doc["paths"]["/invocations"]["post"]["responses"]["200"]["content"]["application/json"]
    assert inv["schema"]["properties"]["predictions"]["items"]["required"] == COLUMNS


def test_schemathesis_finds_no_5xx_and_no_contract_violation(
        prob_server: RunningServer) -> None:
    """The same bounded property-based run as for the value model, on the probability
    version: its request bodies and its per-threshold answers as the document says."""
    calls = fuzz_openapi(prob_server.url, AUTH)
    assert len(calls) >= 100 and not [c for c in calls if c >= 500]
    assert 200 in calls  # valid requests were answered, not only refused


@pytest.mark.parametrize(("change", "named"), [
    (lambda f: f.drop(columns=["rh"]), "rh"),
    (lambda f: f.assign(visibility=5000.0), "visibility"),
])
def test_wrong_columns_are_refused_naming_them(prob_server: RunningServer, change: object,
                                               named: str) -> None:
    frame = change(_rows(3))  # type: ignore[operator]
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    resp = requests.post(f"{prob_server.url}/predict", json=records, headers=AUTH, timeout=10)
    assert resp.status_code == 422, resp.text
    assert named in resp.json()["error"]
    assert resp.json()["field"] == named


def test_prediction_log_names_the_probability_columns(prob_server: RunningServer,
                                                      prob_log: Path,
                                                      prob_version: ProbabilityVersion) -> None:
    import time

    def logged_after(conn: sqlite3.Connection, last_id: int) -> list[tuple[int, int, str]]:
        try:
            return conn.execute("SELECT id, n_rows, outputs FROM predictions WHERE id > ? "
                                "ORDER BY id", (last_id,)).fetchall()
        except sqlite3.OperationalError:  # no table yet: nothing logged so far
            return []

    frame = _rows(4)
    with sqlite3.connect(prob_log) as conn:
        # earlier tests on this server (the fuzzing) logged requests of their own
        time.sleep(0.3)  # > flush_seconds: what they sent is written
        before = logged_after(conn, 0)
        last_id = before[-1][0] if before else 0
        resp = requests.post(f"{prob_server.url}/predict", json={"data": frame.to_json()},
                             headers=AUTH, timeout=10)
        assert resp.status_code == 200, resp.text
        for _ in range(100):
            rows = [(n, out) for _, n, out in logged_after(conn, last_id)]
            if rows:
                break
            time.sleep(0.05)
    assert rows, "the prediction log was not written"
    assert [n for n, _ in rows] == [4], rows  # this request, and only it
    outputs = json.loads(rows[-1][1])
    assert list(outputs) == COLUMNS
    np.testing.assert_allclose(pd.DataFrame(outputs).to_numpy(),
                               _pyfunc(prob_version, frame).to_numpy(), rtol=1e-12, atol=0)


def test_wxops_serve_command_answers_probabilities(registry: Registry,
                                                   prob_version: ProbabilityVersion) -> None:
    frame = _rows(6)
    with serving(registry, "--model", f"{prob_version.name}/{prob_version.version}") as url:
        resp = requests.post(f"{url}/predict", json={"data": frame.to_json()}, headers=AUTH,
                             timeout=30)
        assert resp.status_code == 200, resp.text
        ready = requests.get(f"{url}/model", headers=AUTH, timeout=10).json()
    assert ready["outputs"]["thresholds"] == [1000.0, 5000.0]
    np.testing.assert_allclose(pd.DataFrame(resp.json()["result"])[COLUMNS].to_numpy(),
                               _pyfunc(prob_version, frame).to_numpy(), rtol=1e-12, atol=0)
