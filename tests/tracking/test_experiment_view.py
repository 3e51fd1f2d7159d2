"""wxops experiments open on MLflow's model-training view (runs), not the GenAI overview."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from wxops import tracking


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kind")


def _connect(store: Path) -> MlflowClient:
    tracking.connect(f"sqlite:///{store / 'mlflow.db'}")
    return MlflowClient()


def test_a_new_experiment_is_marked_as_model_training(store: Path) -> None:
    client = _connect(store)
    exp_id = tracking.ensure_experiment("fresh", (store / "a").as_uri())
    assert client.get_experiment(exp_id).tags[tracking.KIND_TAG] == "custom_model_development"


def test_an_unmarked_experiment_is_marked_and_a_chosen_kind_is_kept(store: Path) -> None:
    client = _connect(store)
    old = client.create_experiment("made-before", artifact_location=(store / "b").as_uri())
    genai = client.create_experiment("chat", artifact_location=(store / "c").as_uri(),
                                     tags={tracking.KIND_TAG: "genai_development"})
    assert tracking.ensure_experiment("made-before", None) == old
    assert tracking.ensure_experiment("chat", None) == genai
    assert client.get_experiment(old).tags[tracking.KIND_TAG] == tracking.KIND_TRAINING
    assert client.get_experiment(genai).tags[tracking.KIND_TAG] == "genai_development"


def test_the_ui_link_opens_the_experiment_on_the_training_view(store: Path) -> None:
    _connect(store)
    exp_id = tracking.ensure_experiment("linked", None)
    assert tracking.ui_link("http://127.0.0.1:5000/", "linked") == (
        f"http://127.0.0.1:5000/#/experiments/{exp_id}?workflowType=machine_learning")
    assert tracking.ui_link("http://h:1", "not-there") == (
        "http://h:1/#/experiments?workflowType=machine_learning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None,
                    reason="chromium not installed (Debian: apt-get install -y chromium)")
def test_wxops_ui_shows_the_runs_of_the_project_in_a_browser(tmp_path: Path) -> None:
    """The installed `wxops ui` in a project folder: the address it prints opens the
    experiment's runs under "Model training" (MLflow 3's default view is GenAI traces)."""
    tracking.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = tracking.ensure_experiment("visibility", (tmp_path / "mlartifacts").as_uri())
    with tracking.start_run(exp, "pipeline"):
        tracking.log_metrics({"val_rmse": 2500.0})
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("wxops")), "ui", "--port", str(_free_port())],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        assert proc.stdout is not None
        said = ""
        for _ in range(5):  # "config: ..." and then the address
            said += proc.stdout.readline()
            found = re.search(r"http://\S+", said)
            if found:
                break
        assert found, said
        url = found.group(0)
        assert url.endswith(f"/#/experiments/{exp}?workflowType=machine_learning"), url
        base = url.split("/#/")[0]
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "mlflow ui did not start"
                time.sleep(0.5)
        browser = _chromium()
        assert browser is not None
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                 "--virtual-time-budget=20000", "--window-size=1400,900"]
        dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True,
                             text=True, timeout=180, check=True).stdout
        assert "<strong>1</strong> matching run" in dom and ">pipeline<" in dom, dom[-3000:]
        assert "Detect Issues" not in dom and "Tool calls" not in dom  # the GenAI overview
        shot = tmp_path / "experiment.png"
        subprocess.run([browser, *flags, f"--screenshot={shot}", url], capture_output=True,
                       timeout=180, check=True)
        assert shot.stat().st_size > 10_000
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's workers are in its group
        proc.wait(timeout=30)
