"""CLI commands of the deployment part: ``wxops hook ...`` and ``wxops deploy ...``.

Kept apart from :mod:`wxops.cli`, which adds them with ``register(app)``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from wxops.errors import WxopsError

hook_app = typer.Typer(help="The git trigger: test and train every push.", no_args_is_help=True)
deploy_app = typer.Typer(help="Deployment files: CI, containers, compose, Kubernetes, Airflow.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``wxops hook`` and ``wxops deploy`` to the main CLI."""
    app.add_typer(hook_app, name="hook")
    app.add_typer(deploy_app, name="deploy")


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(WxopsError(f"--env {pair!r}: write it as KEY=VALUE"))
        env[key] = value
    return env


@hook_app.command("install")
def hook_install(
    bare_repo: Annotated[Path, typer.Argument(help="The shared bare repository.")],
    branch: Annotated[str, typer.Option(help="Pushes to this branch run the chain.")] = "main",
    config: Annotated[str, typer.Option(
        "--config", "-c", help="Config file, relative to the repository root.")] = "wxops.yaml",
    python: Annotated[str, typer.Option(
        help="Interpreter that has wxops; default: the one running this command.")] = "",
    env: Annotated[list[str] | None, typer.Option(
        "--env", help="KEY=VALUE for the hook's environment (repeatable), "
                      "e.g. MLFLOW_TRACKING_URI=http://mlflow:5000.")] = None,
    test_command: Annotated[str, typer.Option(
        help="The project's test command ({python} is replaced); "
             "default: python -m pytest -q -m 'not gpu'.")] = "",
    require_tests: Annotated[bool, typer.Option(
        help="Stop when the test command collects no test.")] = False,
    state_dir: Annotated[Path | None, typer.Option(
        help="Work tree and lock; default: BARE_REPO/wxops.")] = None,
    log_dir: Annotated[Path | None, typer.Option(
        help="One log per push; default: STATE_DIR/logs.")] = None,
    step_timeout: Annotated[float, typer.Option(help="Seconds each step may run.")] = 3600.0,
) -> None:
    """Install a post-receive hook: each push to main is tested, then trained and registered."""
    import shlex

    from wxops.deploy.hook import HookSettings, install_hook

    settings = HookSettings(
        git_dir=str(bare_repo.resolve()), branch=branch, config=config,
        python=python or sys.executable, env=_parse_env(env or []),
        test_command=shlex.split(test_command), require_tests=require_tests,
        state_dir=str(state_dir.resolve()) if state_dir else "",
        log_dir=str(log_dir.resolve()) if log_dir else "", step_timeout=step_timeout,
    )
    try:
        notes = install_hook(settings)
    except WxopsError as exc:
        _fail(exc)
        return
    for note in notes:
        typer.echo(note)


@hook_app.command("uninstall")
def hook_uninstall(
    bare_repo: Annotated[Path, typer.Argument(help="The shared bare repository.")],
) -> None:
    """Remove the wxops hook; the hook that was there before comes back."""
    from wxops.deploy.hook import uninstall_hook

    try:
        notes = uninstall_hook(bare_repo)
    except WxopsError as exc:
        _fail(exc)
        return
    for note in notes:
        typer.echo(note)


@deploy_app.command("init")
def deploy_init(
    directory: Annotated[Path, typer.Argument(help="The project folder.")] = Path("."),
    config: Annotated[str, typer.Option(
        "--config", "-c", help="Config file, relative to the project folder.")] = "wxops.yaml",
    image: Annotated[str, typer.Option(help="Base name of images and Kubernetes objects.")]
        = "wxops",
    registry: Annotated[str, typer.Option(help="Container registry prefix.")]
        = "registry.example.org/wxops",
    tracking_uri: Annotated[str, typer.Option(help="Tracking server seen from Kubernetes.")]
        = "http://mlflow.wxops.svc:5000",
    gpu_tag: Annotated[str, typer.Option(help="CI runner tag of the GPU machines.")] = "gpu",
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Write CI templates, Dockerfiles, compose, Kubernetes and Airflow files."""
    from wxops.config import load_config
    from wxops.deploy.files import DeployOptions, lock_text, write_deploy_files

    model = "visibility"
    config_path = directory / config
    try:
        if config_path.is_file():
            model = load_config(config_path).tracking.registered_model
        options = DeployOptions(image=image, registry=registry, config=config, model=model,
                                tracking_uri=tracking_uri, gpu_tag=gpu_tag)
        written = write_deploy_files(directory, options, force=force)
    except WxopsError as exc:
        _fail(exc)
        return
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"secrets (0600, git-ignored) in {directory / 'deploy/secrets'}")
    _, missing = lock_text()
    if missing:
        typer.secho(f"not installed here, left unpinned in requirements.lock: "
                    f"{', '.join(sorted(missing))}", fg=typer.colors.YELLOW)
    typer.echo("next: commit them; docs/deploy.md walks from push to a running service")


@deploy_app.command("lock")
def deploy_lock(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")]
        = Path("requirements.lock"),
    extra: Annotated[list[str] | None, typer.Option(
        help="wxops extras to include besides grib and server, e.g. remote (repeatable).")] = None,
    pyproject: Annotated[Path | None, typer.Option(
        help="Write plain name==version constraints for this pyproject.toml's requirements "
             "instead (wxops' own constraints.txt; PIP_CONSTRAINT takes no hashes).")] = None,
) -> None:
    """Lock wxops' requirements (and the stack's) with hashes and platform markers (uv).

    Versions installed here are kept; `pip install --require-hashes -r requirements.lock`
    installs exactly those files. uv's index: UV_INDEX_URL (default PyPI).
    """
    from wxops.deploy.lock import compile_lock, declared_requirements
    from wxops.deploy.pins import STACK_EXTRAS, pin_requirements, pyproject_requirements

    try:
        if pyproject is not None:
            pins = pin_requirements(pyproject_requirements(pyproject, extra or []))
            extras = "".join(f" --extra {e}" for e in extra or [])
            text = pins.render(
                "Pinned to the versions of the environment that ran\n"
                f"  wxops deploy lock --pyproject {pyproject}{extras} -o {output}\n"
                "torch, pip, setuptools and wheel are left out (pinned in pyproject or by the image).")
            missing = pins.missing
        else:
            extras_used = ["grib", "server", *(extra or [])]
            roots = [*declared_requirements(extras_used), *STACK_EXTRAS]
            pins = pin_requirements(roots)
            command = "wxops deploy lock" + "".join(f" --extra {e}" for e in extra or []) + f" -o {output}"
            text = compile_lock(roots, constraints=pins.pinned, header=(
                f"{command}\n"
                "Resolved by uv for every platform (markers kept), each file's sha256 recorded;\n"
                "versions installed where it ran are kept. Install: pip install --require-hashes -r\n"
                "this file (torch apart: its CPU or CUDA build is chosen by the image)."))
            missing = pins.missing
    except WxopsError as exc:
        _fail(exc)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output} ({text.count('==')} pins)")
    if missing:
        typer.secho(f"not installed here, {'left unpinned' if pyproject else 'resolved by uv'}: "
                    f"{', '.join(sorted(missing))}", fg=typer.colors.YELLOW)


@deploy_app.command("slurm")
def deploy_slurm(
    tracking_uri: Annotated[str, typer.Option(help="The team server (http://…) the job logs to.")],
    directory: Annotated[Path, typer.Argument(help="The project folder.")] = Path("."),
    config: Annotated[str, typer.Option(
        "--config", "-c", help="Config file, relative to the project folder.")] = "wxops.yaml",
    partition: Annotated[str, typer.Option(help="Slurm partition of the GPU nodes.")] = "",
    account: Annotated[str, typer.Option(help="Slurm account to charge.")] = "",
    gpus: Annotated[int, typer.Option(help="GPUs (--gres=gpu:N).")] = 1,
    cpus: Annotated[int, typer.Option(help="CPU cores (--cpus-per-task).")] = 8,
    mem: Annotated[str, typer.Option(help="Memory (--mem), e.g. 32G.")] = "32G",
    time: Annotated[str, typer.Option("--time", help="Wall time, [D-]HH:MM[:SS].")] = "04:00:00",
    setup: Annotated[list[str] | None, typer.Option(
        help="Shell line before training (repeatable), e.g. 'module load cuda'.")] = None,
    wxops_command: Annotated[str, typer.Option(
        "--wxops", help="wxops on the nodes; default: the one running this command.")] = "",
    out: Annotated[str, typer.Option("--out", "-o", help="Script path, relative to the project.")]
        = "deploy/slurm/train.sbatch",
    force: Annotated[bool, typer.Option(help="Overwrite an existing script.")] = False,
) -> None:
    """Write an sbatch script that trains on a GPU node and logs to the team server
    (offline outbox + wxops sync when the node has no network)."""
    from wxops.deploy.slurm import SlurmJobOptions, write_slurm_script

    try:
        path = write_slurm_script(directory, SlurmJobOptions(
            tracking_uri=tracking_uri, config=config, partition=partition, account=account, gpus=gpus,
            cpus=cpus, memory=mem, walltime=time, setup=list(setup or []), wxops=wxops_command),
            out=out, force=force)
    except WxopsError as exc:
        _fail(exc)
        return
    typer.echo(f"wrote {path}")
    typer.echo(f"submit it from {directory.resolve()}: sbatch {out}")


@deploy_app.command("kubeflow")
def deploy_kubeflow(
    directory: Annotated[Path, typer.Argument(help="The project folder.")] = Path("."),
    config: Annotated[str, typer.Option(
        "--config", "-c", help="Config file, relative to the project folder.")] = "wxops.yaml",
    image: Annotated[str, typer.Option(help="Training image of `wxops deploy init`.")]
        = "registry.example.org/wxops/wxops-train:latest",
    project_dir: Annotated[str, typer.Option(
        help="Where the tasks see the project folder (a shared volume).")] = "/opt/wxops/project",
    out: Annotated[str, typer.Option("--out", "-o", help="IR YAML path, relative to the project.")]
        = "deploy/kubeflow/pipeline.yaml",
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Compile the pipeline (prepare -> train each configuration -> release) to Kubeflow's IR YAML."""
    from wxops.deploy.kubeflow import write_kubeflow_pipeline

    try:
        path = write_kubeflow_pipeline(directory, config=config, image=image, project_dir=project_dir,
                                       out=out, force=force)
    except WxopsError as exc:
        _fail(exc)
        return
    typer.echo(f"wrote {path}")
    typer.echo("upload it in the Kubeflow UI, or: kfp pipeline create -p wxops " + out)
