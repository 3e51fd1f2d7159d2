"""The Kubernetes manifests and images of ``wxops deploy init`` under OpenShift's
restricted security context: no fixed UID (OpenShift assigns one), group-0 writable
paths, nothing privileged; the manifests validated against the Kubernetes schemas with
kubernetes-validate (strict)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WXOPS = str(Path(sys.executable).with_name("wxops"))
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")


def restricted_problems(doc: dict[str, Any]) -> list[str]:
    """What keeps a workload from running under OpenShift's restricted-v2 SCC (and the
    Pod Security "restricted" profile)."""
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec") if "template" in spec else spec if doc.get("kind") == "Pod" else None
    if pod is None:
        return []
    name = doc["metadata"]["name"]
    problems = []
    ctx = pod.get("securityContext", {})
    for fixed in ("runAsUser", "runAsGroup", "fsGroup"):
        if fixed in ctx:
            problems.append(f"{name}: pod fixes {fixed} (OpenShift assigns the UID from the namespace range)")
    if ctx.get("runAsNonRoot") is not True:
        problems.append(f"{name}: runAsNonRoot is not true")
    if ctx.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{name}: no RuntimeDefault seccomp profile")
    if pod.get("hostNetwork") or pod.get("hostPID") or any("hostPath" in v for v in pod.get("volumes", [])):
        problems.append(f"{name}: uses the host's network, PIDs or paths")
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        if "runAsUser" in sc:
            problems.append(f"{name}/{c['name']}: container fixes runAsUser")
        if sc.get("privileged") or sc.get("allowPrivilegeEscalation", True):
            problems.append(f"{name}/{c['name']}: privilege escalation allowed")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{name}/{c['name']}: capabilities not dropped (drop: [ALL])")
    return problems


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("openshift")
    done = subprocess.run([WXOPS, "deploy", "init", "."], cwd=folder, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HOME": str(folder / "home")})
    assert done.returncode == 0, done.stderr
    return folder


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    if not VALIDATE.exists():
        pytest.skip("kubernetes-validate not installed: pip install -e '.[test]'")
    return subprocess.run([str(VALIDATE), "--strict", "--no-warn", *map(str, paths)], capture_output=True,
                          text=True, timeout=300)


def test_manifests_are_valid_kubernetes_and_restricted(project: Path) -> None:
    manifests = sorted((project / "deploy" / "k8s").glob("*.yaml"))
    assert manifests
    done = _validate(*manifests)
    assert done.returncode == 0, done.stdout + done.stderr
    workloads = 0
    for path in manifests:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert restricted_problems(doc) == [], path
                workloads += doc["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob", "Pod")
    assert workloads >= 1


def test_validation_and_the_restricted_check_catch_bad_manifests(project: Path, tmp_path: Path) -> None:
    manifest = next((project / "deploy" / "k8s").glob("*.yaml"))
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    typo = tmp_path / "typo.yaml"
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containerz"] = broken["spec"]["template"]["spec"].pop("containers")
    typo.write_text(yaml.safe_dump(broken))
    done = _validate(typo)
    assert done.returncode != 0 and "'containers' is a required property" in done.stdout + done.stderr
    fixed = yaml.safe_load(yaml.safe_dump(deployment))
    fixed["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 10001
    fixed["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert restricted_problems(fixed) == [
        f"{deployment['metadata']['name']}: pod fixes runAsUser (OpenShift assigns the UID from the namespace range)",
        f"{deployment['metadata']['name']}/serve: privilege escalation allowed"]


@pytest.mark.parametrize("dockerfile", ["Dockerfile.train", "Dockerfile.serve"])
def test_images_run_as_any_uid_in_group_0(project: Path, dockerfile: str) -> None:
    text = (project / dockerfile).read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and all(re.fullmatch(r"[1-9]\d*:0", u) for u in users), users  # numeric, group 0
    chowns = re.findall(r"--chown=(\S+)", text)
    assert chowns and all(c.endswith(":0") for c in chowns), chowns
    assert "install -d -o 10001 -g 0 -m 775 /home/wxops/project" in text and "chmod 775 /home/wxops" in text
    assert re.search(r"^ENV HOME=/home/wxops$", text, re.MULTILINE)  # not from /etc/passwd
