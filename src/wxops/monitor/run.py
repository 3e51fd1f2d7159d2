"""One monitor run: read, join, score, compare, conclude, act, publish.

The pure steps live in :mod:`~wxops.monitor.join`, :mod:`~wxops.monitor.drift` and
:mod:`~wxops.monitor.alerts`; this module does the I/O around them (the prediction log,
observation files, the registry through :mod:`wxops.tracking`, files under
``wxops-out/monitor/``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wxops.config import WxopsConfig, parse_duration
from wxops.errors import MonitorError
from wxops.monitor.actions import Incident, incident_key, load_state, open_incident, save_state
from wxops.monitor.alerts import Alert, exit_code
from wxops.monitor.drift import SeasonalBaseline, compare_with_observed
from wxops.monitor.inputs import (
    FORECAST_COLUMNS,
    probability_columns,
    read_observation_files,
    read_prediction_log,
)
from wxops.monitor.join import (
    breaches,
    join_forecasts,
    probability_breaches,
    promotion_probability_scores,
    promotion_scores,
    score_probability_windows,
    score_windows,
    sustained,
)

_META = {*FORECAST_COLUMNS, "station", "valid_time", "lead_time"}


@dataclass
class MonitorResult:
    """What one monitor run found; ``exit_code`` is what the CLI returns."""

    model: str
    version: str
    now: str
    exit_code: int
    alerts: list[Alert]
    scores: pd.DataFrame
    """Rolling-window scores (index ``window_end``)."""
    rule_checks: pd.DataFrame
    drift: pd.DataFrame
    """Per window end, feature and baseline: psi, ks, threshold, breached."""
    promotion: dict[str, float]
    latest_scores: dict[str, float]
    live_breach_windows: dict[str, int]
    drift_breach_windows: dict[tuple[str, str], int]
    drift_latest: list[dict[str, Any]]
    observation_age_s: float
    input_age_s: float
    invalid_share: float | None
    joined_latest: int
    joined_total: int
    incident: Incident | None = None
    incident_open: bool = False
    notes: list[str] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    """A probability version's thresholds (its scores are ``brier_<t>``...); empty for a
    version that predicts the value."""

    def summary(self) -> dict[str, Any]:
        """JSON-ready digest (what ``status.json`` holds)."""
        from wxops.verify.evaluate import json_ready

        return json_ready({
            "model": self.model, "version": self.version, "now": self.now,
            "exit_code": self.exit_code, "alerts": [a.to_dict() for a in self.alerts],
            "kind": "probability" if self.thresholds else "value",
            "thresholds": self.thresholds,
            "promotion": self.promotion, "latest_scores": self.latest_scores,
            "live_breach_windows": self.live_breach_windows,
            "drift_breach_windows": {f"{f}/{b}": n for (f, b), n in self.drift_breach_windows.items()},
            "observation_age_s": self.observation_age_s, "input_age_s": self.input_age_s,
            "invalid_share": self.invalid_share, "joined_latest": self.joined_latest,
            "joined_total": self.joined_total, "incident_open": self.incident_open,
            "incident": self.incident.to_dict() if self.incident else None, "notes": self.notes,
        })


def monitor_dir(project_dir: Path) -> Path:
    return project_dir / "wxops-out" / "monitor"


def served_features(preds: pd.DataFrame, wanted: list[str] | None) -> list[str]:
    """Numeric input columns to watch; an unknown configured feature is an error."""
    outputs = probability_columns(preds)  # a probability version's answers, not inputs
    numeric = [c for c in preds.columns if c not in _META and c not in outputs
               and pd.api.types.is_numeric_dtype(preds[c])]
    if wanted is None:
        return numeric
    unknown = [f for f in wanted if f not in numeric]
    if unknown:
        raise MonitorError(f"monitor.drift.features: unknown feature(s) {unknown}; the served "
                           f"model's inputs are {numeric}")
    return list(wanted)


def load_baseline(cfg: WxopsConfig, project_dir: Path, *, model: str, version: str,
                  features: list[str], window_hours: float) -> tuple[SeasonalBaseline, list[str]]:
    """The season-aware baseline of ``version`` (built once from its training split, cached)."""
    from wxops import tracking
    from wxops.data.lineage import digest_frame
    from wxops.errors import StoredDataError
    from wxops.release.cycle import load_release_data, load_test_data

    d = cfg.monitor.drift
    key = f"{model}-v{version}-{window_hours:g}h-{'-'.join(features)}-{d.month_window}-{d.hour_window}" \
          f"-{d.bins}-{d.training_margin:g}-{d.min_baseline_rows}"
    path = monitor_dir(project_dir) / "baselines" / (hashlib.sha256(key.encode()).hexdigest()[:16] + ".pkl")
    notes: list[str] = []
    if path.is_file():
        with path.open("rb") as fh:
            cached = pickle.load(fh)  # written by this module below, in the project's own folder
        if cached.get("key") == key:
            return cached["baseline"], cached["notes"]
    try:
        train = load_release_data(model, version).split.train  # what the version trained on
    except StoredDataError as exc:
        train = load_test_data(cfg).split.train
        notes.append(f"{exc} — drift baseline rebuilt from today's config instead")
        expected = tracking.get_model_version(model, version)["tags"].get("training_data_sha256")
        if expected and digest_frame(train) != expected:
            notes.append(f"the training split rebuilt from today's config differs from the one "
                         f"version {version} was trained on (data or config changed); drift "
                         "baseline approximate")
    baseline = SeasonalBaseline(features, month_window=d.month_window, hour_window=d.hour_window,
                                min_rows=d.min_baseline_rows, bins=d.bins)
    baseline.fit(train, window_hours=window_hours, margin=d.training_margin)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump({"key": key, "baseline": baseline, "notes": notes}, fh)
    return baseline, notes


def invalid_request_share(service_url: str | None) -> float | None:
    """Share of /predict and /invocations requests answered 4xx, from the service's metrics."""
    if not service_url:
        return None
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(service_url.rstrip("/") + "/metrics", timeout=10) as resp:
            text = resp.read().decode("utf-8")
    except (urllib.error.URLError, OSError) as exc:
        raise MonitorError(f"monitor.service_url {service_url}: cannot read /metrics ({exc})") from exc
    total = bad = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "wxops_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("endpoint") in ("/predict", "/invocations"):
                total += sample.value
                if sample.labels.get("status", "").startswith("4"):
                    bad += sample.value
    return bad / total if total else 0.0


def _drift(cfg: WxopsConfig, baseline: SeasonalBaseline, preds: pd.DataFrame, joined: pd.DataFrame,
           features: list[str], ends: list[pd.Timestamp], window: pd.Timedelta) -> pd.DataFrame:
    d = cfg.monitor.drift
    frames = []
    valid = preds["time"] + pd.Timedelta(hours=cfg.features.lead_time or 0)
    for end in ends[-max(cfg.monitor.windows, 1):]:
        live = preds[(valid > end - window) & (valid <= end)]
        if len(live) < cfg.monitor.min_samples:
            continue
        parts = [baseline.compare(live[["time", *features]])]
        pairs = joined[(joined["valid_time"] > end - window) & (joined["valid_time"] <= end)]
        if len(pairs) >= cfg.monitor.min_samples:
            observed = compare_with_observed(pairs, features, bins=d.bins, psi_threshold=d.observed_psi)
            if not observed.empty:
                observed["threshold"] = d.observed_psi
                parts.append(observed)
        table = pd.concat(parts, ignore_index=True)
        table["window_end"] = end
        ks_limit = np.where(table["baseline"] == "observed", d.observed_ks, np.inf)
        table["breached"] = (table["psi"] > table["threshold"]) | (table["ks"] > ks_limit)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["window_end", "feature", "baseline", "psi", "ks", "threshold", "breached"])


def monitor_once(cfg: WxopsConfig, *, project_dir: Path, observations: list[Path],
                 prediction_log: Path | None = None, window: str | None = None,
                 now: pd.Timestamp | None = None, act: bool = True) -> MonitorResult:
    """Run the monitor once over everything logged and observed so far.

    Args:
        cfg: the project's config (``monitor:``, ``verify:``, ``features:`` sections).
        project_dir: where ``wxops-out/monitor/`` and the tracking store live.
        observations: observation files (CSV/Parquet), read together.
        prediction_log: overrides ``monitor.prediction_log``.
        window: overrides ``monitor.window`` (e.g. ``"7d"``).
        now: the clock for data ages (naive UTC); default the wall clock. A replay of an
            archived period passes its own "now".
        act: run the corrective action on a new incident (False: report only).
    """
    from wxops import tracking

    m = cfg.monitor
    win = pd.Timedelta(seconds=parse_duration(window or m.window))
    step = pd.Timedelta(seconds=parse_duration(m.step))
    clock = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC").tz_localize(None)
    log_path = prediction_log or m.prediction_log
    log_path = log_path if log_path.is_absolute() else project_dir / log_path
    preds = read_prediction_log(log_path)
    obs = read_observation_files(observations, target=cfg.features.target)
    if preds.empty:
        raise MonitorError(f"{log_path}: the prediction log holds no forecast yet; nothing to verify")
    latest = preds.sort_values("received_at").iloc[-1]
    model, version = str(latest["model_name"]), str(latest["model_version"])
    preds = preds[(preds["model_name"] == model) & (preds["model_version"] == version)]
    features = served_features(preds, m.drift.features)
    joined = join_forecasts(preds, obs, target=cfg.features.target, lead_time=cfg.features.lead_time,
                            features=features)
    outputs = probability_columns(preds)
    thresholds = [t for _, t in outputs.values()]
    tracking.connect(tracking.resolve_tracking_uri(cfg.tracking.uri, project_dir), secrets=cfg.tracking.secrets)
    notes: list[str] = []
    if outputs:  # a probability version: Brier score and reliability per threshold
        calibration = [r for r in m.probability_rules if r.score == "calibration"]
        scores = score_probability_windows(
            joined, outputs, window=win, step=step, max_windows=m.max_windows,
            min_samples=m.min_samples,
            calibration_lag_hours=calibration[0].lag_hours if calibration else None)
        promoted = promotion_probability_scores(
            tracking.get_run_record(str(latest["run_id"]))["metrics"], thresholds)
        checks = probability_breaches(scores, m.probability_rules, thresholds, promoted)
        key_score = f"brier_{thresholds[0]:g}"
    else:
        scores = score_windows(joined, window=win, step=step, max_windows=m.max_windows,
                               min_samples=m.min_samples, thresholds=cfg.verify.thresholds,
                               event=cfg.verify.event, cap=cfg.verify.cap_for(cfg.features.target))
        promoted = promotion_scores(tracking.read_run_json(str(latest["run_id"]),
                                                           "verification/verification.json"))
        checks = breaches(scores, m.live_rules, promoted)
        key_score = "rmse"
    if not promoted:
        notes.append(f"version {version} has no recorded promotion scores; live rules use their "
                     "absolute 'limit' where set")
    alerts: list[Alert] = []

    live_windows: dict[str, int] = {}
    scored = scores.dropna(subset=[key_score]) if key_score in scores.columns else scores.iloc[0:0]
    for score in (list(dict.fromkeys(checks["score"])) if not checks.empty else []):
        rows = checks[checks["score"] == score]
        rows = rows[rows["window_end"].isin(scored.index)]
        flags = [bool(v) for v in rows["breached"]]
        live_windows[score] = _run_length(flags)
        if sustained(flags, m.windows):
            alerts.append(_live_alert(score, rows.iloc[-1], live_windows[score], window or m.window))

    ends = list(scored.index) or list(scores.index)
    baseline, base_notes = load_baseline(cfg, project_dir, model=model, version=version,
                                         features=features, window_hours=win.total_seconds() / 3600)
    notes += base_notes
    drift = _drift(cfg, baseline, preds, joined, features, ends, win)
    drift_windows: dict[tuple[str, str], int] = {}
    drift_latest: list[dict[str, Any]] = []
    if not drift.empty:
        for (feature, base), grp in drift.groupby(["feature", "baseline"], sort=True):
            grp = grp.sort_values("window_end")
            flags = [bool(v) for v in grp["breached"]]
            drift_windows[(str(feature), str(base))] = _run_length(flags)
            last = grp.iloc[-1]
            drift_latest.append({k: (v.item() if isinstance(v, np.generic) else v)
                                 for k, v in last.to_dict().items()})
            if sustained(flags, m.windows):
                alerts.append(Alert("drift", str(feature),
                                    f"input {feature} drifted against the {base} baseline: PSI "
                                    f"{last['psi']:.3g} > {last['threshold']:.3g}, KS {last['ks']:.3g}, "
                                    f"for {drift_windows[(str(feature), str(base))]} windows",
                                    {"baseline": str(base), "psi": float(last["psi"]),
                                     "ks": float(last["ks"]), "threshold": float(last["threshold"]),
                                     **({"mean_departure": float(last["mean_departure"])}
                                        if "mean_departure" in last and pd.notna(last["mean_departure"])
                                        else {})}))

    obs_age = (clock - obs["time"].max()).total_seconds()
    input_age = (clock - preds["time"].max()).total_seconds()
    invalid = invalid_request_share(m.service_url)
    if obs_age > parse_duration(m.max_observation_age):
        alerts.append(Alert("stale", "observations", f"newest observation is {obs_age / 3600:.1f} h old",
                            {"age_s": obs_age}))
    if input_age > parse_duration(m.max_input_age):
        alerts.append(Alert("stale", "inputs", f"newest served input is {input_age / 3600:.1f} h old",
                            {"age_s": input_age}))
    if invalid is not None and invalid > m.max_invalid_share:
        alerts.append(Alert("stale", "invalid_requests",
                            f"{100 * invalid:.1f} % of prediction requests were refused as invalid",
                            {"share": invalid}))
    joined_latest = int(scores["n"].iloc[-1]) if not scores.empty else 0
    if joined_latest < m.min_samples:
        alerts.append(Alert("stale", "joined_samples",
                            f"only {joined_latest} forecast/observation pairs in the latest window "
                            f"(need {m.min_samples})", {"n": joined_latest}))

    out = monitor_dir(project_dir)
    state_path = out / "state.json"
    state = load_state(state_path)
    live_alerts = [a for a in alerts if a.kind == "live_score"]
    incident = None
    if live_alerts:
        key = incident_key(model, version, live_alerts)
        if key not in state["open"] and act:
            incident = open_incident(cfg, project_dir, model=model, version=version,
                                     alerts=live_alerts, out_dir=out)
            state["open"] = {key: incident.to_dict()}
        elif key in state["open"]:
            notes.append(f"incident {key} still open since {state['open'][key]['opened']} "
                         f"({state['open'][key]['outcome']})")
    else:
        state["open"] = {}
    save_state(state_path, state)

    latest_scores = ({k: float(v) for k, v in scored.iloc[-1].items()
                      if k not in ("model_version",) and pd.notna(v)} if not scored.empty else {})
    return MonitorResult(
        model=model, version=version, now=str(clock), exit_code=exit_code(alerts), alerts=alerts,
        scores=scores, rule_checks=checks, drift=drift, promotion=promoted,
        latest_scores=latest_scores, live_breach_windows=live_windows,
        drift_breach_windows=drift_windows, drift_latest=drift_latest,
        observation_age_s=obs_age, input_age_s=input_age, invalid_share=invalid,
        joined_latest=joined_latest, joined_total=len(joined), incident=incident,
        incident_open=bool(state["open"]), notes=notes, thresholds=thresholds,
    )


def _live_alert(score: str, last: pd.Series, windows: int, window: str) -> Alert:
    """The alert of a live score beyond its limit for ``windows`` windows in a row."""
    value, promotion, worse = (float(last["value"]), float(last["promotion"]),
                               float(last["worse_pct"]))
    if score.startswith("calibration_"):
        return Alert("live_score", score,
                     f"calibration drifted: P(event at {score.removeprefix('calibration_')}) not "
                     f"reliable (p {value:.2g} < {float(last['alpha']):g}) for {windows} windows "
                     f"of {window}: {last['detail']}",
                     {"value": value, "promotion": promotion, "worse_pct": worse,
                      "windows": windows, "window_end": str(last["window_end"]),
                      "detail": str(last["detail"])})
    increase = float(last.get("max_increase", np.nan))
    if not np.isfinite(promotion):
        limit = "beyond its absolute limit"
    elif np.isfinite(increase):
        limit = f"{value - promotion:+.4g}, limit +{increase:g}"
    else:
        limit = f"{worse:+.1f} %, limit {float(last['max_worse_pct']):g} %"
    what = ("calibration drifted: " if score.startswith("reliability_") else
            "probability forecasts degraded: " if score.startswith("brier_") else "")
    return Alert("live_score", score,
                 f"{what}live {score} {value:.4g} vs {promotion:.4g} at promotion ({limit}) "
                 f"for {windows} windows of {window}",
                 {"value": value, "promotion": promotion, "worse_pct": worse, "windows": windows,
                  "window_end": str(last["window_end"])})


def _run_length(flags: list[bool]) -> int:
    """How many flags in a row are set at the end of ``flags``."""
    count = 0
    for flag in reversed(flags):
        if not flag:
            break
        count += 1
    return count


def save_outputs(result: MonitorResult, out_dir: Path) -> dict[str, Path]:
    """``status.json``, ``scores.csv``, ``drift.csv``: what the report and operators read."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"status": out_dir / "status.json", "scores": out_dir / "scores.csv",
             "drift": out_dir / "drift.csv", "checks": out_dir / "rule_checks.csv"}
    payload = result.summary()
    payload["written"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    paths["status"].write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    result.scores.to_csv(paths["scores"])
    result.drift.to_csv(paths["drift"], index=False)
    result.rule_checks.to_csv(paths["checks"], index=False)
    return paths
