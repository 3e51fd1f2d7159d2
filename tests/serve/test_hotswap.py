"""Hot swap under load: promote a new version while clients hit the server; zero errors."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import requests

from tests.serve.conftest import SWAP_MODEL, Registry, example_frame, start_server


def _promote(registry: Registry, version: str) -> None:
    """What a release step does: move the champion alias (MLflow's own client)."""
    import mlflow

    client = mlflow.MlflowClient(registry.uri, registry_uri=registry.uri)
    client.set_registered_model_alias(SWAP_MODEL, "champion", version)


def test_promotion_under_load_swaps_atomically_with_zero_errors(
    registry: Registry, auth: dict[str, str], admin: dict[str, str]
) -> None:
    import mlflow.sklearn

    _promote(registry, "1")
    frame = example_frame(3)
    mlflow.set_tracking_uri(registry.uri)
    want = {v: mlflow.sklearn.load_model(f"models:/{SWAP_MODEL}/{v}").predict(frame)
            for v in ("1", "2")}
    assert not np.allclose(want["1"], want["2"])  # the versions are distinguishable
    srv = start_server(registry, model=f"{SWAP_MODEL}@champion", poll_seconds=0.3)
    payload = {"data": frame.to_json()}
    results: list[tuple[int, float, str, list[float]]] = []
    errors: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set() and len(results) < 4000:
                try:
                    resp = session.post(f"{srv.url}/predict", json=payload, headers=auth,
                                        timeout=10)
                except requests.RequestException as exc:
                    errors.append(repr(exc))
                    continue
                if resp.status_code != 200:
                    errors.append(f"{resp.status_code}: {resp.text}")
                    continue
                body = resp.json()
                results.append((resp.status_code, time.monotonic(), body["model_version"],
                                body["result"]))

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        _promote(registry, "2")  # picked up by the poller (0.3 s) ...
        reload = requests.post(f"{srv.url}/admin/reload", headers=admin, timeout=30)  # ... or this
        assert reload.status_code == 200, reload.text
        assert reload.json()["model_version"] == "2"
        time.sleep(0.8)
        # and back, through the poller alone
        _promote(registry, "1")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not results or results[-1][2] != "1"):
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        srv.stop()
        _promote(registry, "1")

    assert errors == []
    versions = [v for _, _, v, _ in results]
    assert {"1", "2"} <= set(versions), "the swap did not happen under load"
    # every response names the version that produced it
    for _, _, version, result in results:
        np.testing.assert_allclose(result, want[version], rtol=1e-9)
    # versions change in runs (1 -> 2 -> 1), never interleaving back and forth
    changes = sum(1 for a, b in itertools.pairwise(versions) if a != b)
    assert changes <= 2 + 4  # one change per swap, plus at most one in-flight per client
