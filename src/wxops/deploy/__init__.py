"""From push to production: the git trigger and the deployment files.

``install_hook`` puts a post-receive hook into a bare repository that tests and trains
every push to main; ``write_deploy_files`` writes CI templates, Dockerfiles, a compose
stack, a Kubernetes manifest and an Airflow DAG into a project.
"""

from __future__ import annotations

from wxops.deploy.files import CI_STAGES, DAG_STAGES, DeployOptions, write_deploy_files
from wxops.deploy.hook import HookSettings, install_hook, uninstall_hook
from wxops.deploy.pins import pin_requirements

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
