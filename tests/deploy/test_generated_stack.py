"""Journey 3 of JOURNEYS.md: the deployment files `wxops deploy init` writes start and serve.

No Docker engine runs here, so each service of ``compose.yaml``, the serve pod of the
Kubernetes manifest and ``Dockerfile.serve`` on its own are run on this host with exactly
the command, environment, secret files and mounted files they define (the image's
``ENV``/``ENTRYPOINT``/``CMD``/``WORKDIR`` first, the service's settings over them). What a
container would isolate is mapped, and nothing else is touched: container paths
(``/run/secrets``, ``/srv``, ``/etc/wxops``, the image's work folder) are rooted in a
temporary folder, service names and ports become free loopback ports, the ``postgres``
service is this machine's PostgreSQL (a fresh database) and ``0.0.0.0`` is loopback.

The MLflow service runs with logins; the one-off ``train`` service logs in and registers
a champion there; the serve service, the Kubernetes pod and the bare serve image read it
from that registry with the credentials their secrets hold, answer ``/predict`` with the
generated token, and their probes and health checks point at endpoints that answer.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.serve.conftest import example_frame
from tests.server.conftest import free_port, new_database, pg_available  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.service]

BIN = Path(sys.executable).parent


def _dockerfile(path: Path) -> dict[str, Any]:
    """ENV, ENTRYPOINT, CMD, WORKDIR, HEALTHCHECK of a Dockerfile whose stages build on each other."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    out: dict[str, Any] = {"ENV": {}}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                out["ENV"][key] = value
        elif word in ("ENTRYPOINT", "CMD"):
            out[word] = yaml.safe_load(rest)
        elif word in ("WORKDIR", "HEALTHCHECK"):
            out[word] = rest
    return out


@dataclass
class Host:
    """Where the "containers" live on this host, and the translation into it."""

    project: Path
    root: Path
    database: str
    ports: dict[str, int]
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def translate(self, text: str, port_8080: int | None = None) -> str:
        web = port_8080 or self.ports["serve"]
        pairs = [
            ("postgresql+psycopg://mlflow:", "postgresql+psycopg://postgres:"),
            ("@postgres:5432/mlflow", f"@127.0.0.1:5432/{self.database}"),
            ("http://mlflow:5000", f"http://127.0.0.1:{self.ports['mlflow']}"),
            ("http://mlflow.wxops.svc:5000", f"http://127.0.0.1:{self.ports['mlflow']}"),
            ("127.0.0.1:5000", f"127.0.0.1:{self.ports['mlflow']}"),
            ("--port 5000", f"--port {self.ports['mlflow']}"),
            ("127.0.0.1:8080", f"127.0.0.1:{web}"),
            ("0.0.0.0", "127.0.0.1"),
            ("/run/secrets/", f"{self.root}/run/secrets/"),
            ("/srv/", f"{self.root}/srv/"),
            ("/etc/wxops/", f"{self.root}/etc/wxops/"),
            ("/home/wxops/project", f"{self.root}/home/wxops/project"),
        ]
        for old, new in pairs:
            text = text.replace(old, new)
        return text

    def env(self, *layers: dict[str, str], port_8080: int | None = None) -> dict[str, str]:
        """A container's environment: a bare base, then each layer (image ENV, service)."""
        env = {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": str(self.root / "home"),
               "LANG": "C.UTF-8", "NO_PROXY": "127.0.0.1,localhost"}
        for layer in layers:
            env.update({k: self.translate(str(v), port_8080) for k, v in layer.items()})
        if "WXOPS_SERVE_PORT" in env and port_8080 is not None:
            env["WXOPS_SERVE_PORT"] = str(port_8080)
        return env

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, log: str) -> subprocess.Popen[str]:
        out = open(self.root / f"{log}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()[-3000:]


def _wait(url: str, proc: subprocess.Popen[str], host: Host, log: str, timeout: float = 120) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{log} exited with {proc.returncode}:\n{host.log(log)}")
        try:
            resp = requests.get(url, timeout=5)
            if resp.status_code == 200:
                return resp
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer 200 within {timeout} s:\n{host.log(log)}")


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, new_database) -> Iterator[Host]:  # type: ignore[no-untyped-def]  # noqa: F811
    project = tmp_path_factory.mktemp("deployed")
    (project / "wxops.yaml").write_text(yaml.safe_dump({
        "seed": 7, "models": [{"name": "ridge", "type": "linear"}],
        "gate": {"bootstrap_samples": 200}}))
    done = subprocess.run([str(BIN / "wxops"), "deploy", "init", str(project), "--image", "vis"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    db_uri = new_database()
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_uri.rsplit("/", 1)[1]}"')
    root = tmp_path_factory.mktemp("containers")
    (root / "home").mkdir()
    h = Host(project, root, db_uri.rsplit("/", 1)[1], {"mlflow": free_port(), "serve": free_port()})
    try:
        yield h
    finally:
        for proc in h.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in h.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _mount(host: Host, service: dict[str, Any], secrets: dict[str, Any]) -> None:
    """Compose's secrets (at /run/secrets/NAME) and volumes, rooted in ``host.root``."""
    for name in service.get("secrets", []):
        target = host.root / "run/secrets" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(host.project / secrets[name]["file"])  # a bind mount, mode kept
    for volume in service.get("volumes", []):
        source, dest = volume.split(":")[:2]
        target = Path(host.translate(dest))
        if source.startswith("./"):  # a file of the project, mounted read-only
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(host.translate((host.project / source).read_text()))
        else:
            target.mkdir(parents=True, exist_ok=True)


def _compose_argv(host: Host, service: dict[str, Any], image: dict[str, Any]) -> list[str]:
    entry = service.get("entrypoint", image.get("ENTRYPOINT", []))
    command = service.get("command", image.get("CMD", []))
    # compose turns $$ into $ (the container's shell expands it), the rest is as written
    return [host.translate(a.replace("$$", "$")) for a in [*entry, *command]]


def _image_workdir(host: Host, image: dict[str, Any]) -> Path:
    work = Path(host.translate(image["WORKDIR"]))
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(host.project / "wxops.yaml", work / "wxops.yaml")  # COPY of the config
    return work


def _predict(url: str, token: str) -> dict[str, Any]:
    body = {"data": example_frame(3).to_json()}
    denied = requests.post(f"{url}/predict", json=body, timeout=30)
    assert denied.status_code == 401
    resp = requests.post(f"{url}/predict", json=body, headers={"Authorization": f"Bearer {token}"},
                         timeout=30)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_generated_compose_kubernetes_and_dockerfile_serve_the_champion(host: Host) -> None:
    compose = yaml.safe_load((host.project / "compose.yaml").read_text())
    services, secrets = compose["services"], compose["secrets"]
    train_image = _dockerfile(host.project / "Dockerfile.train")
    serve_image = _dockerfile(host.project / "Dockerfile.serve")
    token = (host.project / "deploy/secrets/wxops_tokens").read_text().strip().split(":", 1)[1]

    # MLflow with logins, as the compose service runs it
    mlflow = services["mlflow"]
    _mount(host, mlflow, secrets)
    proc = host.start(_compose_argv(host, mlflow, train_image),
                      host.env(train_image["ENV"], mlflow.get("environment", {})),
                      _image_workdir(host, train_image), "mlflow")
    url = f"http://127.0.0.1:{host.ports['mlflow']}"
    _wait(f"{url}/health", proc, host, "mlflow")
    assert requests.get(f"{url}/api/2.0/mlflow/experiments/search?max_results=1",
                        timeout=10).status_code == 401  # logins are on
    check = subprocess.run([host.translate(a) for a in mlflow["healthcheck"]["test"][1:]],
                           env=host.env(train_image["ENV"]), timeout=60)
    assert check.returncode == 0

    # the one-off train service registers a champion there, logged in from its secret
    train = services["train"]
    _mount(host, train, secrets)
    done = subprocess.run(_compose_argv(host, train, train_image),
                          env=host.env(train_image["ENV"], train["environment"]),
                          cwd=_image_workdir(host, train_image), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "[champion]" in done.stdout

    # the serve service of compose
    serve = services["serve"]
    _mount(host, serve, secrets)
    compose_port = host.ports["serve"]
    proc = host.start(_compose_argv(host, serve, serve_image),
                      host.env(serve_image["ENV"], serve["environment"], port_8080=compose_port),
                      _image_workdir(host, serve_image), "serve-compose")

    # the Kubernetes pod: image ENTRYPOINT + args, image ENV + pod env, the Secret made by
    # the command the manifest's header gives (from the generated secret files)
    manifest = (host.project / "deploy/k8s/vis-serve.yaml").read_text()
    docs = {d["kind"]: d for d in yaml.safe_load_all(manifest)}
    created = re.sub(r"\\\n#\s*", "", manifest)
    line = next(ln for ln in created.splitlines() if "kubectl create secret generic" in ln)
    words = shlex.split(line.lstrip("# "))
    secret_name, k8s_secret = words[4], {}
    for word in words[5:]:
        kind, _, spec = word.partition("=")
        key, _, value = spec.partition("=")
        k8s_secret[key] = (host.project / value).read_text() if kind == "--from-file" else value
    pod = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    pod_env: dict[str, str] = {}
    for item in pod["env"]:
        if "value" in item:
            pod_env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret_name
            pod_env[item["name"]] = k8s_secret[ref["key"]]
    k8s_port = free_port()
    ports = {p["name"]: p["containerPort"] for p in pod["ports"]}
    assert ports["http"] == 8080
    k8s = host.start([host.translate(a) for a in [*serve_image["ENTRYPOINT"], *pod["args"]]],
                     host.env(serve_image["ENV"], pod_env, port_8080=k8s_port),
                     _image_workdir(host, serve_image), "serve-k8s")

    # Dockerfile.serve alone: its ENTRYPOINT/CMD/ENV, with what its comment says to pass
    image_port = free_port()
    runtime = {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLFLOW_TRACKING_USERNAME": "admin",
               "MLFLOW_TRACKING_PASSWORD": (host.project / "deploy/secrets/mlflow_admin_password").read_text(),
               "WXOPS_SERVE_TOKENS": (host.project / "deploy/secrets/wxops_tokens").read_text()}
    bare = host.start([*serve_image["ENTRYPOINT"], *serve_image["CMD"]],
                      host.env(serve_image["ENV"], runtime, port_8080=image_port),
                      _image_workdir(host, serve_image), "serve-image")

    for name, p, port in (("serve-compose", proc, compose_port), ("serve-k8s", k8s, k8s_port),
                          ("serve-image", bare, image_port)):
        served = f"http://127.0.0.1:{port}"
        ready = _wait(f"{served}/ready", p, host, name).json()
        assert ready["model_name"] == "visibility" and ready["model_version"] == "1", (name, ready)
        answer = _predict(served, token)
        assert answer["model_version"] == "1" and len(answer["result"]) == 3, (name, answer)

    # compose's health check and the image's HEALTHCHECK run as written
    for test, port in ((serve["healthcheck"]["test"][1:], compose_port),
                       (yaml.safe_load(serve_image["HEALTHCHECK"].split(" CMD ", 1)[1]), image_port)):
        check = subprocess.run([host.translate(a, port) for a in test], env=host.env(serve_image["ENV"]),
                               timeout=60)
        assert check.returncode == 0, test
    # the pod's probes point at endpoints that answer, on the port they name
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = pod[probe]["httpGet"]
        port = k8s_port if ports.get(get["port"], get["port"]) == 8080 else None
        assert port is not None, (probe, get)
        assert requests.get(f"http://127.0.0.1:{port}{get['path']}", timeout=10).status_code == 200, probe


def _gate_steps(project: Path) -> list[list[str]]:
    """The train and verify-and-gate shell lines of GitLab CI, GitHub Actions and the DAG."""
    import ast

    gitlab = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    github = yaml.safe_load((project / ".github/workflows/wxops.yml").read_text())["jobs"]
    dag = ast.parse((project / "deploy/airflow/vis_dag.py").read_text())
    stages = next(n.value for n in ast.walk(dag) if isinstance(n, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "STAGES" for t in n.targets))
    config = gitlab["variables"]["WXOPS_CONFIG"]
    # the DAG's commands are f-strings of its CONFIG constant: evaluate just that list
    commands = dict(eval(compile(ast.Expression(stages), "dag", "eval"), {"CONFIG": config}))
    return [
        [line.replace("$WXOPS_CONFIG", config) for line in (*gitlab["train"]["script"],
                                                            *gitlab["verify-and-gate"]["script"])],
        [step["run"].replace("$WXOPS_CONFIG", config) for job in ("train", "verify-and-gate")
         for step in github[job]["steps"] if "run" in step],
        [commands["train"], commands["verify_and_gate"]],
    ]


def test_ci_and_airflow_gate_steps_fail_on_a_rejected_version(host: Host) -> None:
    """The train and gate steps as CI and Airflow run them: a promoted version passes, a
    rejected one fails the pipeline at the gate (exit 6), training itself does not."""
    steps = _gate_steps(host.project)
    for found in steps:
        assert [c.replace('"', "") for c in found] == [c.replace('"', "") for c in steps[0]], steps
    train, gate = steps[0]
    assert "|| [ $? -eq 6 ]" in train and gate.startswith("wxops verify")
    env = host.env({"MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLFLOW_TRACKING_USERNAME": "admin",
                    "MLFLOW_TRACKING_PASSWORD": (host.project / "deploy/secrets/mlflow_admin_password").read_text()})
    env["PATH"] = f"{BIN}:{env['PATH']}"
    ci = host.root / "ci-checkout"
    ci.mkdir()
    shutil.copy(host.project / "wxops.yaml", ci / "wxops.yaml")

    def step(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", command], cwd=ci, env=env, capture_output=True, text=True, timeout=300)

    # the champion the stack's train service registered passes the gate step
    passed = step(gate)
    assert passed.returncode == 0, passed.stdout[-2000:] + passed.stderr[-2000:]
    # a worse configuration: training succeeds, the gate step fails the pipeline with 6
    (ci / "wxops.yaml").write_text(yaml.safe_dump({
        "seed": 7, "gate": {"bootstrap_samples": 200},
        "models": [{"name": "mlp-one-epoch", "type": "mlp", "epochs": 1, "learning_rate": 1e-5,
                    "hidden_dim": 4}]}))
    trained = step(train)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    assert "stays challenger" in trained.stdout
    rejected = step(gate)
    assert rejected.returncode == 6 and "FAIL" in rejected.stdout, rejected.stdout[-2000:]
