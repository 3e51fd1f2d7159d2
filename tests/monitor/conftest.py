"""A real registered model, a real ``wxops serve`` on loopback, and a replay of held-out hours.

The session fixture trains one ridge model with :func:`wxops.run_pipeline` (promoted
through the real gate, so its verification scores are recorded), then replays the first
two weeks of a held-out month through a real server hour by hour, once with the inputs
as observed and once with +3 K on ``t2m`` (a biased temperature sensor). The prediction
logs those servers write are what the monitor reads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.probability_version import PROBABILITY_MODEL
from wxops.config import WxopsConfig, parse_config
from wxops.pipeline import run_pipeline
from wxops.release.cycle import load_test_data

#: Held-out block replayed (a test month of the reference split) and how many days of it.
REPLAY_BLOCK = "1980-12"
REPLAY_DAYS = 14
PREDICTORS = ["t2m", "td2m", "rh", "pressure", "wind_speed", "wind_dir", "total_cloud", "opaque_cloud"]


@dataclass(frozen=True)
class Project:
    root: Path
    uri: str
    raw: dict[str, object]
    version: str
    run_id: str
    """The pipeline run (its probability configuration: ``tests.probability_version``)."""

    def config(self, **monitor: object) -> WxopsConfig:
        """The project config with ``monitor:`` overrides (test-sized windows by default)."""
        section: dict[str, object] = {"window": "2d", "step": "12h", "windows": 2,
                                      "min_samples": 12, "max_observation_age": "6h",
                                      "max_input_age": "6h"}
        section.update(monitor)
        return parse_config({**self.raw, "monitor": section})


@dataclass(frozen=True)
class Replay:
    """One replay: the prediction log written by the server and the observations."""

    log: Path
    obs: pd.DataFrame
    """Valid time, visibility and the observed predictors of the replayed hours."""


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    from wxops.serve.server import configure_serving_process

    configure_serving_process()
    root = tmp_path_factory.mktemp("monitor-project")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    raw: dict[str, object] = {"seed": 7, "models": [{"name": "ridge", "type": "linear", "alpha": 1.0}],
                              "tracking": {"uri": uri}}
    models = [*raw["models"], PROBABILITY_MODEL]  # type: ignore[misc]
    tracking = {**raw["tracking"], "probability_model": None}  # type: ignore[dict-item]
    # test_probability registers the probability model itself: no probability release cycle
    result = run_pipeline(parse_config({**raw, "models": models, "tracking": tracking}),
                          project_dir=root)
    assert result.became_champion, result.release_message
    return Project(root, uri, raw, result.version, result.run_id)


@pytest.fixture(scope="session")
def held_out(project: Project) -> pd.DataFrame:
    """The replayed hours: naive-UTC ``time``, predictors and visibility, as observed."""
    data = load_test_data(project.config())
    obs = data.obs[data.obs["block"] == REPLAY_BLOCK].sort_values("time")
    obs = obs.assign(time=obs["time"].dt.tz_convert("UTC").dt.tz_localize(None))
    obs = obs[obs["time"] < obs["time"].min() + pd.Timedelta(days=REPLAY_DAYS)]
    return obs[["time", *PREDICTORS, "visibility"]].dropna().reset_index(drop=True)


def serve_and_replay(project: Project, rows: pd.DataFrame, log: Path) -> None:
    """Start a real server with a prediction log, send one request per hour, stop it."""
    from wxops.serve import ServeSettings, build_app, run_in_thread
    from wxops.serve.settings import PredictionLogSettings

    settings = ServeSettings(tracking_uri=project.uri, port=0, poll_seconds=0, auth=False,
                             prediction_log=PredictionLogSettings(path=log, flush_seconds=0.2))
    server = run_in_thread(build_app(settings))
    try:
        deadline = time.monotonic() + 60
        while requests.get(f"{server.url}/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.05)
        with requests.Session() as http:
            for _, row in rows.iterrows():
                record = {"time": row["time"].isoformat(), **{c: float(row[c]) for c in PREDICTORS}}
                resp = http.post(f"{server.url}/predict", json=[record], timeout=10)
                assert resp.status_code == 200, resp.text
    finally:
        server.stop()


@pytest.fixture(scope="session")
def clean_replay(project: Project, held_out: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Replay:
    log = tmp_path_factory.mktemp("clean") / "predictions.db"
    serve_and_replay(project, held_out, log)
    return Replay(log, held_out)


@pytest.fixture(scope="session")
def biased_replay(project: Project, held_out: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Replay:
    log = tmp_path_factory.mktemp("biased") / "predictions.db"
    serve_and_replay(project, held_out.assign(t2m=held_out["t2m"] + 3.0), log)
    return Replay(log, held_out)


def write_days(obs: pd.DataFrame, folder: Path, days: int) -> list[Path]:
    """The first ``days`` days of observations as one CSV per day (as a feed delivers them)."""
    folder.mkdir(parents=True, exist_ok=True)
    start = obs["time"].min().normalize()
    paths = []
    for day in range(days):
        part = obs[(obs["time"] >= start + pd.Timedelta(days=day)) &
                   (obs["time"] < start + pd.Timedelta(days=day + 1))]
        path = folder / f"obs-{day:02d}.csv"
        if not path.exists():
            part.to_csv(path, index=False)
        paths.append(path)
    return paths


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    yield
