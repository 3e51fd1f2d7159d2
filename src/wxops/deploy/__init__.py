"""From push to production: the git trigger and the deployment files.

``install_hook`` puts a post-receive hook into a bare repository that tests and trains
every push to main; ``write_deploy_files`` writes CI templates, Dockerfiles, a compose
stack, a Kubernetes manifest and an Airflow DAG into a project.

Names load on first use, so ``wxops --help`` and other commands stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wxops.deploy.files import CI_STAGES, DAG_STAGES, DeployOptions, write_deploy_files
    from wxops.deploy.hook import HookSettings, install_hook, uninstall_hook
    from wxops.deploy.pins import pin_requirements

_EXPORTS: dict[str, str] = {
    "CI_STAGES": "wxops.deploy.files",
    "DAG_STAGES": "wxops.deploy.files",
    "DeployOptions": "wxops.deploy.files",
    "HookSettings": "wxops.deploy.hook",
    "install_hook": "wxops.deploy.hook",
    "pin_requirements": "wxops.deploy.pins",
    "uninstall_hook": "wxops.deploy.hook",
    "write_deploy_files": "wxops.deploy.files",
}

__all__ = [
    "CI_STAGES",
    "DAG_STAGES",
    "DeployOptions",
    "HookSettings",
    "install_hook",
    "pin_requirements",
    "uninstall_hook",
    "write_deploy_files",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
