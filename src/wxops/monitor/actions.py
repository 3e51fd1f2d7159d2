"""Corrective action on a live-score incident: retrain, or recommend a rollback.

An incident opens when a live score stays beyond its limit for the configured number of
windows. It is recorded once (``incidents.jsonl`` beside the status page, and a run of
the ``<experiment>-monitor`` MLflow experiment) and the action runs once per incident,
not on every monitor run while it lasts; the incident closes when the score recovers.
A rollback is only *recommended*, with its evidence and the exact command: moving the
champion stays a decision of a person (``wxops rollback --reason ...``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wxops.config import WxopsConfig
from wxops.errors import ReleaseError, WxopsError
from wxops.monitor.alerts import Alert


@dataclass
class Incident:
    """A sustained live-score breach of one model version, and what was done about it."""

    key: str
    model: str
    version: str
    opened: str
    alerts: list[dict[str, Any]]
    action: str
    outcome: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    mlflow_run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def incident_key(model: str, version: str, alerts: list[Alert]) -> str:
    return f"{model}/{version}:" + ",".join(sorted(a.subject for a in alerts))


def load_state(path: Path) -> dict[str, Any]:
    """Open incidents from the previous monitor run (empty when there is none)."""
    if not path.is_file():
        return {"open": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"open": {}}  # a damaged state only means an incident may be re-announced
    return state if isinstance(state.get("open"), dict) else {"open": {}}


def save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def recommend_rollback(cfg: WxopsConfig, version: str, model: str | None = None) -> dict[str, Any]:
    """The version a rollback of ``model`` (default: the configured registered model) would
    restore and the command to do it (nothing is moved). A probability model keeps its own
    champion history, so its incident is read against that history, not the deterministic
    model's."""
    from wxops.release.cycle import read_history
    from wxops.release.history import rollback_target

    name = model or cfg.tracking.registered_model
    try:
        target = rollback_target(read_history(cfg, name), version)
    except ReleaseError as exc:
        return {"model": name, "target": None, "why_not": str(exc),
                "command": "none: retrain (`wxops run`) or promote a challenger"}
    which = "" if name == cfg.tracking.registered_model else f" --model {name}"
    return {"model": name, "target": target,
            "command": f"wxops rollback{which} --reason 'monitor incident on {name} version {version}'"}


def retrain(cfg: WxopsConfig, project_dir: Path) -> dict[str, Any]:
    """Run the training pipeline; the gate decides whether the new version becomes champion."""
    from wxops.pipeline import run_pipeline

    try:
        result = run_pipeline(cfg, project_dir=project_dir)
    except WxopsError as exc:
        return {"retrained": False, "error": str(exc)}
    return {"retrained": True, "version": result.version, "became_champion": result.became_champion,
            "gate_passed": result.gate_passed, "message": result.release_message,
            "pipeline_run_id": result.run_id}


def open_incident(cfg: WxopsConfig, project_dir: Path, *, model: str, version: str,
                  alerts: list[Alert], out_dir: Path) -> Incident:
    """Record the incident, run the configured action, log both to MLflow."""
    from wxops import tracking

    action = cfg.monitor.action
    incident = Incident(key=incident_key(model, version, alerts), model=model, version=version,
                        opened=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        alerts=[a.to_dict() for a in alerts], action=action)
    if action == "recommend_rollback":
        incident.details = recommend_rollback(cfg, version, model)
        target = incident.details.get("target")
        incident.outcome = (f"rollback to version {target} recommended: {incident.details['command']}"
                            if target else f"no rollback possible ({incident.details['why_not']})")
    elif action == "retrain":
        incident.details = retrain(cfg, project_dir)
        incident.outcome = ("retrained: version {version}, champion: {became_champion}"
                            .format(**incident.details) if incident.details.get("retrained")
                            else f"retraining failed: {incident.details.get('error')}")
    else:
        incident.outcome = "recorded only (monitor.action: none)"
    uri = tracking.resolve_tracking_uri(cfg.tracking.uri, project_dir)
    tracking.connect(uri, secrets=cfg.tracking.secrets)
    incident.mlflow_run_id = tracking.log_monitor_run(
        f"{cfg.tracking.experiment}-monitor", tracking.default_artifact_root(uri, project_dir),
        name=f"incident {model} v{version}",
        tags={"wxops.kind": "monitor-incident", "wxops.model": model, "wxops.version": version,
              "wxops.action": action},
        params={"action": action, "rules": ",".join(sorted(a.subject for a in alerts)),
                "windows": cfg.monitor.windows, "window": cfg.monitor.window},
        metrics={f"live_{a.subject}": float(a.evidence.get("value", float("nan"))) for a in alerts},
        payload=incident.to_dict(), artifact_file="incident.json")
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "incidents.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(incident.to_dict(), default=str) + "\n")
    from wxops import notify

    notify.send(cfg.notify, notify.Notice(
        "incident", f"{model} version {version}: live-score incident",
        "\n".join([*(f"- {a.message}" for a in alerts),
                    "", f"Action ({action}): {incident.outcome}"]),
        {"model": model, "version": version, "opened": incident.opened,
         "rules": ", ".join(sorted(a.subject for a in alerts))}))
    return incident
