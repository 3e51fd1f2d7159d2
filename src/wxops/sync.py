"""``wxops sync``: upload the runs the outbox holds to the server they were meant for.

Every step compares before it writes, so a sync can be interrupted anywhere and run
again: the server run carries the offline run's id (tag ``wxops.offline_run_id``),
metric points already there (same key, step, timestamp and value) are skipped,
artifacts already there (same path and size) are not uploaded again, and logged
models and registrations are matched by tags. ``sync-state.json`` in the outbox
records per run what is done, so finished runs are not even looked at again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wxops.errors import SyncError
from wxops.outbox import (
    LOCAL_ONLY_TAGS,
    ORIGIN_MODEL_TAG,
    ORIGIN_TAG,
    REMOTE_RUN_TAG,
    TARGET_TAG,
    outbox_uri,
)

_BATCH = 1000


@dataclass
class SyncReport:
    """What a sync did, for the one-line summary."""

    runs: int = 0
    skipped: int = 0
    metric_points: int = 0
    artifacts: int = 0
    models: int = 0
    versions: list[str] = field(default_factory=list)
    registered: list[tuple[str, str, str]] = field(default_factory=list)
    """(registered model, server version, server URI) of each version this sync registered."""

    def summary(self) -> str:
        if self.runs == 0 and self.skipped == 0:
            return "nothing to sync: the outbox holds no offline runs"
        parts = [f"synced {self.runs} run(s)", f"{self.metric_points} new metric point(s)",
                 f"{self.artifacts} artifact file(s)", f"{self.models} logged model(s)"]
        if self.versions:
            parts.append("registered " + ", ".join(self.versions) + " [challenger]")
        if self.skipped:
            parts.append(f"{self.skipped} run(s) already complete")
        return "; ".join(parts)


class _State:
    """Per-run progress in ``sync-state.json`` (written atomically after every step)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(loaded, dict):
                    raise ValueError("not a JSON object")
                self.data = loaded
            except ValueError as exc:
                raise SyncError(f"{path} is damaged ({exc}); delete it and sync again "
                                "(nothing is uploaded twice)") from exc

    def run(self, local_id: str) -> dict[str, Any]:
        return self.data.setdefault(local_id, {})

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def _check_outbox(folder: Path) -> bool:
    """False when there is no outbox; SyncError when its database is not readable."""
    db = folder / "mlflow.db"
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            conn.execute("SELECT count(*) FROM runs").fetchone()
    except sqlite3.Error as exc:
        raise SyncError(f"outbox {db} is not a readable MLflow store ({exc}); move it aside "
                        "and check its runs with `mlflow ui --backend-store-uri sqlite:///...`") from exc
    return True


def sync_outbox(folder: Path, *, target: str | None = None,
                echo: Callable[[str], Any] = lambda _m: None) -> SyncReport:
    """Upload every offline run of ``folder`` (parents before children); return what was done."""
    report = SyncReport()
    if not _check_outbox(folder):
        return report
    import mlflow
    from mlflow.exceptions import MlflowException

    local = mlflow.MlflowClient(tracking_uri=outbox_uri(folder), registry_uri=outbox_uri(folder))
    state = _State(folder / "sync-state.json")
    try:
        exps = local.search_experiments()
        runs = [r for exp in exps for r in _all_runs(local, exp.experiment_id)]
    except MlflowException as exc:
        raise SyncError(f"cannot read the outbox {folder}: {exc.message}") from exc
    runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
    for run in runs:
        uri = target or run.data.tags.get(TARGET_TAG)
        if not uri:
            raise SyncError(f"offline run {run.info.run_id} does not say which server it was meant for "
                            "(tag wxops.offline.target); give --to URL")
        entry = state.run(run.info.run_id)
        if entry.get("done") and entry.get("target") == uri:
            report.skipped += 1
            continue
        remote = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        try:
            _sync_run(local, remote, run, uri, state, entry, report)
        except MlflowException as exc:
            raise SyncError(f"sync of offline run {run.info.run_id} to {uri} stopped: {exc.message}; "
                            "run `wxops sync` again to resume") from exc
        echo(f"run {run.info.run_name or run.info.run_id}: {run.info.run_id} -> {entry['remote_run_id']}")
    _register_versions(local, folder, state, report, target)
    return report


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    from mlflow.entities import ViewType

    out, token = [], None
    while True:
        page = client.search_runs([experiment_id], run_view_type=ViewType.ALL, max_results=1000,
                                  page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _remote_experiment(local: Any, remote: Any, experiment_id: str) -> str:
    name = local.get_experiment(experiment_id).name
    exp = remote.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    from wxops.tracking import KIND_TAG, KIND_TRAINING

    return str(remote.create_experiment(name, tags={KIND_TAG: KIND_TRAINING}))


def _remote_run(local: Any, remote: Any, run: Any, state: _State, entry: dict[str, Any]) -> str:
    """The server run this offline run goes to: recorded, continued, found by tag, or new."""
    if entry.get("remote_run_id"):
        return str(entry["remote_run_id"])
    continued = run.data.tags.get(REMOTE_RUN_TAG)
    if continued:
        remote.get_run(continued)  # it must still exist
        return str(continued)
    exp = _remote_experiment(local, remote, run.info.experiment_id)
    found = remote.search_runs([exp], filter_string=f"tags.`{ORIGIN_TAG}` = '{run.info.run_id}'",
                               max_results=1)
    if found:
        return str(found[0].info.run_id)
    parent = run.data.tags.get("mlflow.parentRunId")
    tags = {ORIGIN_TAG: run.info.run_id}
    if parent:
        tags["mlflow.parentRunId"] = _mapped(state, parent)
    created = remote.create_run(exp, start_time=run.info.start_time, tags=tags, run_name=run.info.run_name)
    return str(created.info.run_id)


def _mapped(state: _State, local_id: str) -> str:
    entry = state.data.get(local_id, {})
    return str(entry.get("remote_run_id", local_id))


def _sync_run(local: Any, remote: Any, run: Any, uri: str, state: _State, entry: dict[str, Any],
              report: SyncReport) -> None:
    from mlflow.entities import Param, RunTag

    local_id = run.info.run_id
    entry["target"] = uri
    entry["remote_run_id"] = _remote_run(local, remote, run, state, entry)
    state.save()
    rid = entry["remote_run_id"]
    have = remote.get_run(rid)

    params = [Param(k, v) for k, v in run.data.params.items() if k not in have.data.params]
    tags = {k: v for k, v in run.data.tags.items() if k not in LOCAL_ONLY_TAGS}
    if "mlflow.parentRunId" in tags:
        tags["mlflow.parentRunId"] = _mapped(state, tags["mlflow.parentRunId"])
    tags[ORIGIN_TAG] = local_id
    new_tags = [RunTag(k, v) for k, v in tags.items() if have.data.tags.get(k) != v]
    for start in range(0, max(len(params), len(new_tags)), 100):
        remote.log_batch(rid, params=params[start:start + 100], tags=new_tags[start:start + 100])

    for key in run.data.metrics:
        there = {(m.step, m.timestamp, m.value) for m in remote.get_metric_history(rid, key)}
        missing = [m for m in local.get_metric_history(local_id, key)
                   if (m.step, m.timestamp, m.value) not in there]
        for start in range(0, len(missing), _BATCH):
            remote.log_batch(rid, metrics=missing[start:start + _BATCH])
        report.metric_points += len(missing)

    _sync_inputs(run, remote, rid, have)
    report.artifacts += _sync_artifacts(local, remote, local_id, rid)
    report.models += _sync_models(local, remote, run, rid, entry, state)
    if run.info.status in ("FINISHED", "FAILED", "KILLED"):
        remote.set_terminated(rid, run.info.status, end_time=run.info.end_time)
    entry["done"] = True
    state.save()
    report.runs += 1


def _sync_inputs(run: Any, remote: Any, rid: str, have: Any) -> None:
    existing = {(d.dataset.name, d.dataset.digest) for d in (have.inputs.dataset_inputs if have.inputs else [])}
    todo = [d for d in (run.inputs.dataset_inputs if run.inputs else [])
            if (d.dataset.name, d.dataset.digest) not in existing]
    if todo:
        remote.log_inputs(rid, datasets=todo)


def _walk(client: Any, run_id: str, path: str | None = None) -> dict[str, int]:
    files: dict[str, int] = {}
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            files.update(_walk(client, run_id, item.path))
        else:
            files[item.path] = int(item.file_size or 0)
    return files


def _sync_artifacts(local: Any, remote: Any, local_id: str, rid: str) -> int:
    there = _walk(remote, rid)
    todo = {p: s for p, s in _walk(local, local_id).items() if there.get(p) != s}
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(todo):
            file = local.download_artifacts(local_id, path, tmp)
            parent = os.path.dirname(path) or None
            remote.log_artifact(rid, file, parent)
    return len(todo)


def _sync_models(local: Any, remote: Any, run: Any, rid: str, entry: dict[str, Any], state: _State) -> int:
    """Copy the run's logged models (MLflow 3 LoggedModel entities) with their files."""
    import mlflow
    import yaml
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    models = entry.setdefault("models", {})
    count = 0
    outputs = run.outputs.model_outputs if run.outputs else []
    for out in outputs:
        if out.model_id in models:
            continue
        lm = local.get_logged_model(out.model_id)
        exp = remote.get_run(rid).info.experiment_id
        new = remote.create_logged_model(
            experiment_id=exp, name=lm.name, source_run_id=rid,
            tags={**(lm.tags or {}), ORIGIN_MODEL_TAG: lm.model_id},
            params=lm.params or None, model_type=lm.model_type)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=lm.artifact_location,
                                                              dst_path=tmp, tracking_uri=local.tracking_uri))
            mlmodel = folder / "MLmodel"
            if mlmodel.exists():  # the metadata names its run and model: point them at the server's
                meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
                meta["run_id"], meta["model_id"] = rid, new.model_id
                mlmodel.write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
            remote.log_model_artifacts(new.model_id, str(folder))
        remote.finalize_logged_model(new.model_id, LoggedModelStatus.READY)
        remote.log_outputs(rid, models=[LoggedModelOutput(new.model_id, out.step)])
        models[out.model_id] = new.model_id
        state.save()
        count += 1
    return count


def _model_id_of(mv: Any) -> str | None:
    """The logged model a version was made from (``models:/m-...`` source or ``model_id``)."""
    import re

    found = getattr(mv, "model_id", None) or re.search(r"m-[0-9a-f]{32}", str(mv.source or ""))
    if found is None:
        return None
    return found if isinstance(found, str) else found.group(0)


def _register_versions(local: Any, folder: Path, state: _State, report: SyncReport, target: str | None) -> None:
    """Register on the server every version the outbox registry holds, as ``challenger``.

    The champion decision made offline was against the outbox, not the team's registry,
    so a synced version never takes ``champion``: the release gate on the server does.
    """
    import mlflow

    from wxops.tracking import (
        ARTIFACT_TAG,
        CHALLENGER,
        REGISTRATION_TAG,
        REMOTE_MODEL_RUN_TAG,
        REMOTE_MODEL_TAG,
    )

    done = state.data.setdefault("_versions", {})
    for rm in local.search_registered_models():
        for mv in local.search_model_versions(f"name='{rm.name}'"):
            key = f"{rm.name}/{mv.version}"
            if key in done:
                continue
            local_tags = dict(mv.tags or {})
            source_entry = state.data.get(mv.run_id or "", {})
            if REMOTE_MODEL_TAG in local_tags:  # logged on the server before it went away
                remote_model: str | None = local_tags[REMOTE_MODEL_TAG]
                remote_run = local_tags.get(REMOTE_MODEL_RUN_TAG)
                uri = target or source_entry.get("target") or _target_of(local, mv.run_id, state)
            else:
                model_id = _model_id_of(mv)
                remote_model = source_entry.get("models", {}).get(model_id) if model_id else None
                remote_run = source_entry.get("remote_run_id")
                uri = target or source_entry.get("target")
            if not remote_run or remote_model is None or not uri:
                continue  # its run is not synced (yet): the next sync registers it
            remote = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
            tags = {k: v for k, v in local_tags.items() if k not in (REMOTE_MODEL_TAG, REMOTE_MODEL_RUN_TAG)}
            tags[ORIGIN_MODEL_TAG] = key
            # the sha256 record must describe the server's copy (its MLmodel names the
            # server's run and model), which promote, rollback and serve check
            tags[ARTIFACT_TAG] = _remote_digests(uri, remote.get_logged_model(remote_model).artifact_location)
            if "pipeline_run_id" in tags:
                tags["pipeline_run_id"] = _mapped(state, tags["pipeline_run_id"])
            # Made before: by an earlier sync (origin tag), or by the run itself before the
            # server went away half-way through registering (same registration id).
            existing = [v for v in remote.search_model_versions(f"name='{rm.name}'")
                        if (v.tags or {}).get(ORIGIN_MODEL_TAG) == key
                        or (REGISTRATION_TAG in tags
                            and (v.tags or {}).get(REGISTRATION_TAG) == tags[REGISTRATION_TAG])]
            if existing:
                version = existing[0].version
                for k, v in tags.items():
                    if (existing[0].tags or {}).get(k) != v:
                        remote.set_model_version_tag(rm.name, version, k, v)
            else:
                if not remote.search_registered_models(f"name='{rm.name}'"):
                    remote.create_registered_model(rm.name)
                version = remote.create_model_version(
                    rm.name, f"models:/{remote_model}", run_id=remote_run, tags=tags,
                    model_id=remote_model, await_creation_for=0).version
            if "champion" not in {a for a, v in _aliases(remote, rm.name).items() if v == str(version)}:
                remote.set_registered_model_alias(rm.name, CHALLENGER, version)
            done[key] = str(version)
            state.save()
            report.versions.append(f"{rm.name} v{version}")
            report.registered.append((rm.name, str(version), uri))


def _remote_digests(uri: str, artifact_location: str) -> str:
    """The ``wxops.artifact_sha256`` record of a logged model's files on the server."""
    import mlflow

    from wxops.tracking import folder_digests

    with tempfile.TemporaryDirectory(prefix="wxops-sync-digest-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=artifact_location, dst_path=tmp, tracking_uri=uri)
        return json.dumps(folder_digests(Path(local)), sort_keys=True)


def _aliases(remote: Any, name: str) -> dict[str, str]:
    return {a: str(v) for a, v in (remote.get_registered_model(name).aliases or {}).items()}


def _target_of(local: Any, run_id: str | None, state: _State) -> str | None:
    """The server a version's run was meant for: its run's target tag, else the outbox's."""
    from mlflow.exceptions import MlflowException

    if run_id:
        try:
            found = local.get_run(run_id).data.tags.get(TARGET_TAG)
        except MlflowException:  # a server run that ended before the server went away
            found = None
        if found:
            return str(found)
    targets = {e.get("target") for k, e in state.data.items() if not k.startswith("_") and e.get("target")}
    return targets.pop() if len(targets) == 1 else None
