"""``wxops deploy slurm``: an ``sbatch`` script that trains the project on a GPU node.

The script runs ``wxops run`` with the team server as tracking URI; on a compute node
without a route to the server the run goes into the project's offline outbox and is
uploaded by ``wxops sync`` (tried at the end of the job, or later on a login node).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from wxops.errors import DeployError

_PLACEHOLDER = re.compile(r"%%([a-z_]+)%%")
_WALLTIME = re.compile(r"^(\d+-)?\d{1,2}:\d{2}(:\d{2})?$")
_MEMORY = re.compile(r"^\d+[KMGT]?$")
_JOB_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class SlurmJobOptions:
    """What the training job asks Slurm for and where it logs.

    Attributes:
        tracking_uri: the team server (``http://…``); the job's runs go there or to the outbox.
        partition, account: ``sbatch -p`` / ``-A`` (empty: the cluster's defaults).
        gpus: GPUs on the node (``--gres=gpu:N``).
        cpus: cores for the job (data loading, scikit-learn models).
        memory: ``--mem``, e.g. ``32G``.
        walltime: ``--time``, e.g. ``04:00:00``.
        setup: shell lines before training (``module load cuda``, ``source venv/bin/activate``).
        wxops: the command on the node (default: the ``wxops`` beside this interpreter).
    """

    tracking_uri: str
    config: str = "wxops.yaml"
    partition: str = ""
    account: str = ""
    gpus: int = 1
    cpus: int = 8
    memory: str = "32G"
    walltime: str = "04:00:00"
    job_name: str = "wxops-train"
    setup: list[str] = field(default_factory=list)
    wxops: str = ""
    extra: list[str] = field(default_factory=list)

    def check(self) -> None:
        if not self.tracking_uri.startswith(("http://", "https://")):
            raise DeployError(f"--tracking-uri {self.tracking_uri!r}: give the team server's http(s):// URL")
        if self.gpus < 1:
            raise DeployError("--gpus must be at least 1: the script is for a GPU node")
        if self.cpus < 1:
            raise DeployError("--cpus must be at least 1")
        if not _MEMORY.match(self.memory):
            raise DeployError(f"--mem {self.memory!r}: write it as Slurm does, e.g. 32G or 16000M")
        if not _WALLTIME.match(self.walltime):
            raise DeployError(f"--time {self.walltime!r}: write it as [D-]HH:MM[:SS], e.g. 04:00:00")
        if not _JOB_NAME.match(self.job_name):
            raise DeployError(f"--job-name {self.job_name!r}: letters, digits, '_', '.', '-' only")
        if Path(self.config).is_absolute():
            raise DeployError("--config: give the config relative to the project folder")


def slurm_script(options: SlurmJobOptions, *, script: str, log_dir: str) -> str:
    """The sbatch script's text for ``options``."""
    options.check()
    sbatch = [f"#SBATCH --partition={options.partition}"] if options.partition else []
    sbatch += [f"#SBATCH --account={options.account}"] if options.account else []
    sbatch += [f"#SBATCH {line}" for line in options.extra]
    values = {
        "config": shlex.quote(options.config), "script": script, "job_name": options.job_name,
        "gpus": str(options.gpus), "cpus": str(options.cpus), "memory": options.memory,
        "walltime": options.walltime, "log_dir": log_dir, "sbatch_extra": "\n".join(sbatch),
        "setup": "\n".join(options.setup) or "# (none)",
        "tracking_uri": options.tracking_uri,
        "wxops": shlex.quote(options.wxops or str(Path(sys.executable).with_name("wxops"))),
    }
    template = resources.files("wxops.deploy").joinpath("templates/slurm-train.sbatch.tmpl").read_text("utf-8")
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    return re.sub(r"\n{3,}", "\n\n", text)


def write_slurm_script(project: Path, options: SlurmJobOptions, *, out: str = "deploy/slurm/train.sbatch",
                       force: bool = False) -> Path:
    """Write the script (mode 0755) below ``project``; its logs go to ``.wxops/slurm``."""
    path = project / out
    if path.exists() and not force:
        raise DeployError(f"{path} exists; pass --force to overwrite it")
    text = slurm_script(options, script=out, log_dir=".wxops/slurm")
    path.parent.mkdir(parents=True, exist_ok=True)
    (project / ".wxops" / "slurm").mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path
