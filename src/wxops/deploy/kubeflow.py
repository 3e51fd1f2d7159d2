"""``wxops deploy kubeflow``: the pipeline as a Kubeflow Pipelines (v2) IR YAML.

The DAG is wxops' own: ``prepare`` (ingest + QC, features, split) -> one ``train`` task
per model configuration, in parallel -> ``release`` (log, register the best, verify,
gate, promote). Each task runs the wxops stage in the training image of
``wxops deploy init`` and calls :func:`wxops.pipeline.run_pipeline` on the project
folder: ``prepare`` and ``train`` stop after their stage (``stop_after``), and the
stages they computed are found in the project's stage cache by the later tasks. So the
tasks must share the project folder: on a cluster, mount one volume (a PVC) at
``project_dir`` in every task; the tracking server comes from the config or
``MLFLOW_TRACKING_URI``.

The fan-out is fixed when the YAML is built (one task per configuration named in the
config), so the graph in the Kubeflow UI shows each configuration by name.
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.
import re
from pathlib import Path
from typing import Any

from wxops.errors import DeployError

_TASK_NAME = re.compile(r"[^a-z0-9-]+")


def _kfp() -> Any:
    try:
        import kfp
        from kfp import compiler, dsl
    except ImportError as exc:
        raise DeployError("wxops deploy kubeflow needs the kfp SDK: `pip install 'wxops[kubeflow]'`") from exc
    return kfp, compiler, dsl


def build_pipeline(model_names: list[str], *, image: str, project_dir: str, config: str,
                   name: str = "wxops-train") -> Any:
    """The kfp pipeline function for a project whose configurations are ``model_names``."""
    if not model_names:
        raise DeployError("the config names no model configuration to train")
    _, _, dsl = _kfp()

    @dsl.component(base_image=image)
    def prepare(project_dir: str, config: str) -> str:
        """Ingest + QC, features and split into the project's stage cache."""
        from pathlib import Path

        from wxops.config import load_config
        from wxops.pipeline import run_pipeline
        from wxops.startup import configure_process

        configure_process()
        folder = Path(project_dir)
        result = run_pipeline(load_config(folder / config), project_dir=folder, stop_after="split")
        return ",".join(result.cached_stages) or "computed"

    @dsl.component(base_image=image)
    def train(project_dir: str, config: str, model: str, prepared: str) -> str:
        """Train one configuration (its nested MLflow run and model)."""
        from pathlib import Path

        from wxops.config import load_config
        from wxops.pipeline import run_pipeline
        from wxops.startup import configure_process

        configure_process()
        folder = Path(project_dir)
        cfg = load_config(folder / config)
        chosen = [m for m in cfg.models if m.name == model]
        if not chosen:
            raise ValueError(f"model configuration {model!r} is no longer in {config}; rebuild the pipeline")
        result = run_pipeline(cfg.model_copy(update={"models": chosen}), project_dir=folder, stop_after="train")
        return result.run_id

    @dsl.component(base_image=image)
    def release(project_dir: str, config: str) -> str:
        """Log every configuration, register the best, verify, gate and promote."""
        import json
        from pathlib import Path

        from wxops.config import load_config
        from wxops.pipeline import run_pipeline
        from wxops.startup import configure_process

        configure_process()
        folder = Path(project_dir)
        result = run_pipeline(load_config(folder / config), project_dir=folder)
        return json.dumps({"version": result.version, "champion": result.became_champion,
                           "best": result.best, "gate_passed": result.gate_passed,
                           "message": result.release_message})

    @dsl.pipeline(name=name, description="wxops: prepare -> train each configuration -> release")
    def pipeline(project_dir: str = project_dir, config: str = config) -> str:
        prepared = prepare(project_dir=project_dir, config=config).set_display_name("ingest, features, split")
        trained = []
        for model in model_names:
            task = train(project_dir=project_dir, config=config, model=model, prepared=prepared.output)
            task.set_display_name(f"train {model}")
            trained.append(task)
        released = release(project_dir=project_dir, config=config).after(*trained)
        released.set_display_name("register, verify, gate, promote")
        return released.output  # type: ignore[no-any-return]

    return pipeline


def write_kubeflow_pipeline(project: Path, *, config: str = "wxops.yaml", image: str,
                            project_dir: str = "/opt/wxops/project",
                            out: str = "deploy/kubeflow/pipeline.yaml", force: bool = False) -> Path:
    """Compile the project's pipeline to the IR YAML at ``project/out``."""
    from wxops.config import load_config

    cfg_path = project / config
    cfg = load_config(cfg_path)
    path = project / out
    if path.exists() and not force:
        raise DeployError(f"{path} exists; pass --force to overwrite it")
    _, compiler, _ = _kfp()
    pipeline = build_pipeline([m.name for m in cfg.models], image=image, project_dir=project_dir,
                              config=config, name=_TASK_NAME.sub("-", f"{cfg.tracking.experiment}-train".lower()))
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(path))
    return path
