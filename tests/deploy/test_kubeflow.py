"""Journey 7 (Kubeflow): ``wxops deploy kubeflow`` compiles the pipeline to the IR YAML
and kfp's local runner (SubprocessRunner, no cluster) runs that YAML end to end into a
real MLflow store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

WXOPS = str(Path(sys.executable).with_name("wxops"))
MODELS = [{"name": "gbm", "type": "gradient_boosting", "max_iter": 10}, {"name": "ridge", "type": "linear"}]


def _deploy(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WXOPS, "deploy", "kubeflow", ".", *args], cwd=project, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HOME": str(project / "home")})


@pytest.mark.filterwarnings("ignore:You may be attemping:RuntimeWarning")  # the image is not used locally
def test_journey_7_kubeflow_pipeline_runs_locally_into_mlflow(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Journey 7: compiled IR YAML -> kfp local run -> the runs and the champion in MLflow."""
    pytest.importorskip("kfp", reason="the kfp SDK is in the test extra: pip install -e '.[test]'")
    from kfp import components, local

    project = tmp_path / "project"
    project.mkdir()
    (project / "wxops.yaml").write_text(yaml.safe_dump({"seed": 7, "models": MODELS}))
    done = _deploy(project, "--image", "registry.example.org/met/wxops-train:1", "--project-dir", str(project))
    assert done.returncode == 0, done.stderr
    ir = project / "deploy" / "kubeflow" / "pipeline.yaml"
    spec = yaml.safe_load(ir.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    names = {key: t["taskInfo"]["name"] for key, t in tasks.items()}
    assert sorted(names.values()) == ["ingest, features, split", "register, verify, gate, promote",
                                      "train gbm", "train ridge"]
    trains = [k for k, n in names.items() if n.startswith("train ")]
    release = next(k for k, n in names.items() if n.startswith("register"))
    assert sorted(tasks[release]["dependentTasks"]) == sorted(trains)
    assert all(tasks[k]["dependentTasks"] == ["prepare"] for k in trains)
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {"registry.example.org/met/wxops-train:1"}

    # kfp's local runner executes the compiled YAML, each task a process of this environment.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-root"))
    pipeline = components.load_component_from_file(str(ir))
    outcome = json.loads(pipeline(project_dir=str(project), config="wxops.yaml").output)
    assert outcome["version"] == "1" and outcome["champion"] is True, outcome

    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias("visibility", "champion").version) == "1"
    exp = client.get_experiment_by_name("visibility").experiment_id
    trained = client.search_runs([exp], "tags.`wxops.partial` = 'train'")
    assert len(trained) == 2  # one pipeline run per train task
    configs = client.search_runs([exp], "tags.`wxops.kind` = 'config'")
    by_task = {r.info.run_name for r in configs if "wxops.reused_from_run" not in r.data.tags}
    reused = {r.info.run_name for r in configs if "wxops.reused_from_run" in r.data.tags}
    assert by_task == reused == {"gbm", "ridge"}  # trained in their tasks, logged again by release


def test_deploy_kubeflow_refuses_bad_input(tmp_path: Path) -> None:
    pytest.importorskip("kfp", reason="the kfp SDK is in the test extra: pip install -e '.[test]'")
    project = tmp_path / "project"
    project.mkdir()
    missing = _deploy(project)
    assert missing.returncode == 1 and "config file not found" in missing.stderr
    (project / "wxops.yaml").write_text(yaml.safe_dump({"models": [{"name": "r", "type": "linear"}]}))
    assert _deploy(project).returncode == 0
    again = _deploy(project)
    assert again.returncode == 1 and "exists; pass --force" in again.stderr
