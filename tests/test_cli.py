"""The command line as a user types it, including every kind of bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from tests.conftest import make_obs, small_config_dict, write_config
from wxops.cli import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "init", "config", "ui", "runs"):
        assert command in result.output


def test_init_then_validate_and_schema(tmp_path: Path) -> None:
    folder = tmp_path / "my-usecase"
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    text = (folder / "wxops.yaml").read_text()
    assert "# wxops.yaml" in text  # commented
    result = runner.invoke(app, ["config", "validate", "-c", str(folder / "wxops.yaml")])
    n_models = len(yaml.safe_load(text)["models"])  # the template's own list, probability models included
    assert result.exit_code == 0 and f"valid ({n_models} model configurations)" in result.output
    again = runner.invoke(app, ["init", str(folder)])
    assert again.exit_code == 1 and "already exists" in again.output
    schema = json.loads(runner.invoke(app, ["config", "schema"]).output)
    assert "models" in schema["properties"]


def _table_project(tmp_path: Path, frame, **data) -> Path:  # type: ignore[no-untyped-def]
    frame.to_csv(tmp_path / "obs.csv", index=False)
    raw = small_config_dict(models=[{"name": "ridge", "type": "linear"}],
                            data={"source": "table", "path": "obs.csv", **data})
    return write_config(tmp_path, raw)


def _bad_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    cases: dict[str, tuple[Path, str]] = {}
    d = tmp_path / "missing_file"
    cases["missing file"] = (write_config(d, small_config_dict(
        data={"source": "table", "path": "nowhere.csv"})), "nowhere.csv: data file not found")
    d = tmp_path / "unreadable"
    d.mkdir()
    (d / "obs.csv").write_bytes(b"\x89PNG\x00\x00garbage\xff")
    cases["unreadable csv"] = (write_config(d, small_config_dict(
        data={"source": "table", "path": "obs.csv"})), "obs.csv: (cannot read table|no time column)")
    d = tmp_path / "columns"
    d.mkdir()
    cases["missing column"] = (_table_project(d, make_obs(100).drop(columns=["td2m"])),
                               r"lacks the columns \['td2m'\]")
    d = tmp_path / "target"
    d.mkdir()
    cases["all-missing target"] = (_table_project(d, make_obs(100).assign(visibility=-9900)),
                                   r"most by rule sentinel in 'visibility': 2400 rows")
    d = tmp_path / "few"
    d.mkdir()
    cases["too few rows"] = (_table_project(d, make_obs(20)), "a split needs at least 3")
    d = tmp_path / "model"
    cases["unknown model"] = (write_config(d, small_config_dict(
        models=[{"name": "x", "type": "xgboostt"}])), r"models\.0: .*'xgboostt'")
    d = tmp_path / "empty"
    d.mkdir()
    (d / "wxops.yaml").write_text("")
    cases["empty config"] = (d / "wxops.yaml", "the file is empty")
    return cases


def test_bad_input_fails_cleanly(tmp_path: Path) -> None:
    for label, (config, message) in _bad_cases(tmp_path).items():
        result = runner.invoke(app, ["run", "-q", "-c", str(config)])
        assert result.exit_code == 1, label
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, (label, result.output)
        import re

        assert re.search(message, result.output), (label, result.output)
        store = config.parent / "mlflow.db"
        if store.exists():  # no half-registered model, no run left RUNNING
            client = MlflowClient(f"sqlite:///{store}", registry_uri=f"sqlite:///{store}")
            assert client.search_model_versions("name = 'visibility'") == [], label
            exp = client.get_experiment_by_name("visibility")
            if exp is not None:
                runs = client.search_runs([exp.experiment_id])
                assert all(r.info.status == "FAILED" for r in runs), label


def test_run_then_search_runs(tmp_path: Path) -> None:
    obs = make_obs(120)
    config = _table_project(tmp_path, obs)
    raw = yaml.safe_load(config.read_text())
    raw["models"] = [{"name": "ridge", "type": "linear"},
                     {"name": "tiny-mlp", "type": "mlp", "hidden_dim": 4, "epochs": 2},
                     {"name": "prob", "type": "probability", "max_iter": 10}]
    raw["tracking"] = {"probability_model": None}  # verified only (registry: test_probability_versions)
    config.write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["run", "-q", "-c", str(config)])
    assert result.exit_code == 0, result.output
    # the probability model is verified on the test block; with probability_model: null
    # it is not registered
    for threshold in ("1000", "5000"):
        line = next(x for x in result.output.splitlines()
                    if x.startswith(f"prob (test block) P(below {threshold}): BSS vs climatology"))
        assert "events=" in line and "n=" in line
    assert "prob gate " in result.output and "visibility-prob" not in result.output
    verified = json.loads((tmp_path / "wxops-out" / "probability-prob.json").read_text())
    assert {r["threshold"] for r in verified["scores"]} == {1000.0, 5000.0}
    assert {"reliability", "roc", "economic_value", "strata", "gate"} <= set(verified)
    assert "version 1 [champion]" in result.output
    assert result.output.count("version 1 is champion (1.0.0, initial)") == 1  # said once
    assert "(val_rmse " in result.output and " m) -> visibility" in result.output  # target's unit
    again = runner.invoke(app, ["run", "-q", "-c", str(config)])
    assert "nothing changed: every stage skipped" in again.output
    found = runner.invoke(app, ["runs", "-c", str(config), "--filter",
                                "metrics.val_rmse < 1e9 and params.model = 'mlp'"])
    assert found.exit_code == 0, found.output
    assert "tiny-mlp" in found.output and "ridge" not in found.output
    bad = runner.invoke(app, ["runs", "-c", str(config), "--filter", "metrics.val_rmse <<< 3"])
    assert bad.exit_code == 1 and "bad filter" in bad.output
    assert np.isfinite(float(json.loads((tmp_path / "wxops-out" / "result.json").read_text())[
        "metrics"]["ridge"]["val_rmse"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ui_serves_the_project_store(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wxops.cli", "ui", "--port", str(port)], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"mlflow ui did not start: {out[-2000:]}")
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=10"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert any(e["name"] == "Default" for e in body["experiments"])
        assert (tmp_path / "mlflow.db").is_file()  # the UI opened the project's own store
    finally:
        # The server's workers are children of the UI process: stop the whole group.
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_help_loads_no_heavy_library() -> None:
    """`wxops --help` must stay fast: no MLflow, PyTorch, pandas, FastAPI or SciPy import."""
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom wxops.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "print(sorted(m for m in ('mlflow', 'torch', 'pandas', 'fastapi', 'scipy', 'sklearn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
