"""``wxops deploy init``: write the deployment files of a project from templates.

The templates are package data (``wxops/deploy/templates``) with ``%%name%%``
placeholders; ``%%`` appears in none of the target languages' own syntax (GitHub's
``${{ }}``, shell's ``$VAR``, compose's ``${VAR}``), so each file keeps its own
expressions untouched. Secrets (the PostgreSQL password, MLflow's admin password and
CSRF key, the service's bearer token) are generated into ``deploy/secrets/`` with mode
0600 and a ``.gitignore`` that keeps them out of the repository.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from wxops.deploy.pins import STACK_EXTRAS, pin_requirements, tool_pin, wxops_requirements
from wxops.errors import DeployError

#: Template file -> path written below the project folder (``%%image%%`` is substituted).
OUTPUTS: dict[str, str] = {
    "gitlab-ci.yml.tmpl": ".gitlab-ci.yml",
    "github-workflow.yml.tmpl": ".github/workflows/wxops.yml",
    "Jenkinsfile.tmpl": "Jenkinsfile",
    "Dockerfile.train.tmpl": "Dockerfile.train",
    "Dockerfile.serve.tmpl": "Dockerfile.serve",
    "dockerignore.tmpl": ".dockerignore",
    "compose.yaml.tmpl": "compose.yaml",
    "prometheus.yml.tmpl": "deploy/prometheus.yml",
    "mlflow_basic_auth.ini.tmpl": "deploy/mlflow/basic_auth.ini",
    "k8s-serve.yaml.tmpl": "deploy/k8s/%%image%%-serve.yaml",
    "airflow_dag.py.tmpl": "deploy/airflow/%%image%%_dag.py",
    "wheels_README.md.tmpl": "wheels/README.md",
}
LOCK_FILE = "requirements.lock"
SECRETS_DIR = "deploy/secrets"
#: The CI stages, in the order both CI templates run them.
CI_STAGES: tuple[str, ...] = (
    "lint", "test", "build-train-image", "build-serve-image", "train", "verify-and-gate",
    "deploy-serve",
)
#: The Airflow DAG's tasks, in order.
DAG_STAGES: tuple[str, ...] = ("validate_config", "test", "train", "verify_and_gate")

_PLACEHOLDER = re.compile(r"%%([a-z_]+)%%")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


@dataclass(frozen=True)
class DeployOptions:
    """What the generated files are parameterised by.

    Attributes:
        image: base name of the images and Kubernetes objects (``<image>-train``,
            ``<image>-serve``); lower case, digits and dashes, as image names allow.
        registry: container registry prefix, e.g. ``registry.example.org/met``.
        config: the project's config file, relative to the project folder.
        model: registered model name the service serves (``<model>@champion``).
        tracking_uri: tracking server URI the Kubernetes service reads the model from.
        gpu_tag: runner tag (GitLab) or label (GitHub) of the machines with a GPU.
        python_image: base image of both Dockerfiles.
    """

    image: str = "wxops"
    registry: str = "registry.example.org/wxops"
    config: str = "wxops.yaml"
    model: str = "visibility"
    tracking_uri: str = "http://mlflow.wxops.svc:5000"
    gpu_tag: str = "gpu"
    python_image: str = "python:3.11-slim-bookworm"

    def __post_init__(self) -> None:
        if not _NAME.match(self.image):
            raise DeployError(
                f"image name {self.image!r}: use lower-case letters, digits and dashes "
                "(it names images and Kubernetes objects)"
            )
        if Path(self.config).is_absolute():
            raise DeployError(f"config {self.config!r}: give it relative to the project folder")


def _values(options: DeployOptions) -> dict[str, str]:
    try:
        version = metadata.version("wxops")
    except metadata.PackageNotFoundError:
        from wxops import __version__ as version
    torch = metadata.version("torch").split("+")[0] if _installed("torch") else "2.13.0"
    return {
        "image": options.image,
        "registry": options.registry.rstrip("/"),
        "config": options.config,
        "model": options.model,
        "tracking_uri": options.tracking_uri,
        "gpu_tag": options.gpu_tag,
        "python_image": options.python_image,
        "torch_version": torch,
        "wxops_spec": f"wxops=={version}",
        "pytest_pin": tool_pin("pytest"),
        "ruff_pin": tool_pin("ruff"),
        "project_hint": "/opt/wxops/project",
    }


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def render(text: str, values: dict[str, str]) -> str:
    """Fill ``%%name%%`` placeholders; an unknown name is a bug in a template, so it raises."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise DeployError(f"template placeholder %%{key}%% has no value")
        return values[key]

    return _PLACEHOLDER.sub(fill, text)


def lock_text(extra_roots: tuple[str, ...] = STACK_EXTRAS) -> tuple[str, list[str]]:
    """The pinned ``requirements.lock`` for the images and the names left unpinned."""
    roots = [*wxops_requirements(["grib"]), *extra_roots]  # images read GRIB (ecCodes from Debian)
    pins = pin_requirements(roots)
    header = (
        "Pinned by `wxops deploy init` from the environment that ran it, so images and CI\n"
        "install what was tested. torch is installed apart (CPU or CUDA build by build arg).\n"
        "Regenerate after upgrading: wxops deploy lock -o requirements.lock"
    )
    return pins.render(header), pins.missing


def planned_files(options: DeployOptions) -> list[str]:
    """Relative paths ``write_deploy_files`` writes (without the generated secrets)."""
    return [render(out, {"image": options.image}) for out in OUTPUTS.values()] + [LOCK_FILE]


def write_deploy_files(
    project_dir: Path, options: DeployOptions | None = None, *, force: bool = False
) -> list[Path]:
    """Write CI, container, compose, Kubernetes and Airflow files into ``project_dir``.

    Args:
        project_dir: the project folder (where ``wxops.yaml`` lives), usually a git work tree.
        options: names and addresses to fill in; defaults suit the visibility example.
        force: overwrite files that exist. Without it, nothing is written if any exists,
            so a hand-edited file is never lost half-way through.

    Returns:
        The paths written, secrets excluded (they are created once and never overwritten).

    Raises:
        DeployError: a file exists (without ``force``) or the folder is not writable.
    """
    options = options or DeployOptions()
    values = _values(options)
    targets = {render(out, values): tmpl for tmpl, out in OUTPUTS.items()}
    existing = [rel for rel in [*targets, LOCK_FILE] if (project_dir / rel).exists()]
    if existing and not force:
        raise DeployError(
            f"{project_dir}: would overwrite {', '.join(existing)}; "
            "move them away or pass --force"
        )
    templates = resources.files("wxops.deploy").joinpath("templates")
    written: list[Path] = []
    try:
        for rel, tmpl in targets.items():
            path = project_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(templates.joinpath(tmpl).read_text("utf-8"), values), "utf-8")
            written.append(path)
        lock, _missing = lock_text()
        (project_dir / LOCK_FILE).write_text(lock, "utf-8")
        written.append(project_dir / LOCK_FILE)
        _write_secrets(project_dir / SECRETS_DIR)
    except OSError as exc:
        raise DeployError(f"cannot write deployment files in {project_dir}: {exc}") from exc
    return written


#: Generated secret files -> how their random value is written. ``wxops_tokens`` is in
#: the format ``wxops serve --token-file`` (and ``WXOPS_SERVE_TOKENS``) reads.
SECRET_FILES: dict[str, str] = {
    "postgres_password": "{}",
    "mlflow_admin_password": "{}",
    "mlflow_flask_secret": "{}",
    "wxops_tokens": "predict,admin:{}",
}


def _write_secrets(folder: Path) -> None:
    """Random secrets for the compose stack, 0600, kept out of git by a ``.gitignore``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".gitignore").write_text("# secrets stay on this machine\n*\n!.gitignore\n")
    for name, form in SECRET_FILES.items():
        path = folder / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(form.format(secrets.token_urlsafe(32)))
