"""Where runs go while the team server is unreachable, and the tags that tie them to it.

The outbox is an ordinary MLflow store (SQLite plus an artifact folder) inside the
project, so an offline run is complete and browsable with ``mlflow ui`` until
``wxops sync`` uploads it. No MLflow import here: this module only names things.
"""

from __future__ import annotations

from pathlib import Path

#: Tag on an offline run: the server URI it was meant for.
TARGET_TAG = "wxops.offline.target"
#: Tag on an offline run that continues a server run begun before the server went away.
REMOTE_RUN_TAG = "wxops.offline.remote_run_id"
#: Tag on the server run: which offline run it was uploaded from (makes sync idempotent).
ORIGIN_TAG = "wxops.offline_run_id"
#: Tag on a server logged model: which offline logged model it was copied from.
ORIGIN_MODEL_TAG = "wxops.offline_model_id"
#: Tags that only make sense in the outbox and are not uploaded.
LOCAL_ONLY_TAGS = (TARGET_TAG, REMOTE_RUN_TAG)


def default_outbox(project_dir: Path) -> Path:
    """``PROJECT/.wxops/outbox``: beside the stage cache, ignored by git like it."""
    return project_dir / ".wxops" / "outbox"


def outbox_uri(folder: Path) -> str:
    """SQLite tracking URI of the outbox store."""
    return f"sqlite:///{(folder / 'mlflow.db').resolve()}"


def outbox_artifacts(folder: Path) -> str:
    """Artifact root of experiments created in the outbox."""
    return (folder / "artifacts").resolve().as_uri()


def is_remote(uri: str) -> bool:
    """Whether ``uri`` is a tracking server reached over the network (may go away)."""
    return uri.startswith(("http://", "https://"))
