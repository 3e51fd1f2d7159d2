"""Wiring of the release cycle: verify a version, gate it, promote or roll back.

The stages it calls are pure (``verify_forecasts``, ``replay_cycles``, ``evaluate_gate``,
``classify_change``...); this module does the I/O around them: reading the data, the
registry (through :mod:`wxops.tracking`), the fresh-process technical tests and the
report on disk. Alias changes happen last and all together, so a failed gate, a failed
technical test or an error anywhere before leaves every alias as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wxops import notify, tracking
from wxops.config import WxopsConfig
from wxops.errors import ReleaseError, StoredDataError
from wxops.features import TARGET
from wxops.release.gate import GateResult, evaluate_gate
from wxops.release.history import HistoryEntry, current_user, now_utc, rollback_target
from wxops.release.history import record_alias_change as _record
from wxops.release.note import (
    bump_version,
    classify_change,
    diff_params,
    diff_signature,
    release_note,
)
from wxops.release.probability_cycle import ProbabilityEvaluation
from wxops.release.replay import replay_cycles, replay_init_times
from wxops.release.stored import TestData, load_release_data
from wxops.release.stored import champion_data as _champion_data
from wxops.release.stored import naive_time as _naive_time
from wxops.release.technical import TechnicalResult, run_technical_checks
from wxops.verify.evaluate import Verification, json_ready, stratify, verify_forecasts
from wxops.verify.references import Climatology, cap_values, fit_climatology, nwp_forecast
from wxops.verify.report import write_report
from wxops.verify.score_table import score_names

#: Version tag holding the semantic version given at promotion.
SEMVER_TAG = "wxops.semver"
CHANGE_TAG = "wxops.change_class"
#: Version tag: JSON [input, previous type, new type] of a breaking change (read by serve).
SIGNATURE_CHANGE_TAG = "wxops.signature_change"


@dataclass
class Evaluation:
    """Everything learned about one version before a promotion decision."""

    name: str
    version: str
    champion: str | None
    technical: TechnicalResult
    verification: Verification
    """Whole test block, all rows."""
    replay: Verification
    """Forecast-cycling replay of the test block: what the gate judges."""
    gate: GateResult
    report: Path
    signature: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.technical.passed and self.gate.passed

    def why(self) -> str:
        """One line for the person at the terminal."""
        if not self.technical.passed:
            return self.technical.summary()
        return self.gate.summary()

    def summary(self, thresholds: list[float]) -> list[str]:
        """Five lines: what was judged, rmse and ETS (with event counts) of the candidate
        against every reference, and which gate rules passed or failed."""
        return verification_summary(self.replay, self.gate, thresholds,
                                    title=f"version {self.version}")


@dataclass
class Promotion:
    """What a promote/rollback did."""

    name: str
    version: str
    promoted: bool
    previous: str | None
    message: str
    semver: str | None = None
    change_class: str | None = None
    evaluation: Evaluation | ProbabilityEvaluation | None = None


__all__ = ["Evaluation", "Promotion", "TestData", "choose_model", "evaluate_version",
           "is_probability_model", "load_release_data", "load_test_data", "promote_version",
           "resolve_model_version", "resolve_version", "rollback_champion"]


def choose_model(cfg: WxopsConfig, model: str | None) -> str:
    """The registered model a release command acts on: ``tracking.registered_model``
    (default) or ``tracking.probability_model``; any other name is an error."""
    name = cfg.tracking.registered_model
    if model is None or model.strip() in ("", name):
        return name
    if cfg.tracking.probability_model is not None and model.strip() == cfg.tracking.probability_model:
        return cfg.tracking.probability_model
    known = [name] + ([cfg.tracking.probability_model] if cfg.tracking.probability_model else [])
    raise ReleaseError(f"model '{model}' is not one of this project's registered models "
                       f"({', '.join(known)}; tracking.registered_model and "
                       "tracking.probability_model in the config)")


def is_probability_model(cfg: WxopsConfig, name: str) -> bool:
    """Whether ``name`` is the project's registered model of probability versions."""
    return cfg.tracking.probability_model is not None and name == cfg.tracking.probability_model


def resolve_model_version(cfg: WxopsConfig, spec: str | None, model: str | None = None
                          ) -> tuple[str, str]:
    """(registered model, version) from ``7``, ``visibility-prob/7``, ``@challenger``,
    ``visibility-prob@champion`` or a bare model name (its challenger, else champion);
    ``model`` (``--model``) names the registered model when the spec does not."""
    text = (spec or "").strip()
    named: str | None = None
    rest: str | None = text or None
    if "@" in text:
        named, _, alias = text.partition("@")
        rest = f"@{alias}"
    elif "/" in text:
        named, _, rest = text.rpartition("/")
    elif text and not text.isdigit():
        named, rest = text, None
    named = named or None
    if named is not None and model is not None and named.strip() != model.strip():
        raise ReleaseError(f"'{spec}' names model '{named}' but --model says '{model}'")
    name = choose_model(cfg, named or model)
    return name, resolve_version(name, rest)


def load_test_data(cfg: WxopsConfig) -> TestData:
    """Ingest, QC, build features and split exactly as the pipeline does.

    For benchmarks and tests that need the tables without a run; the release cycle
    itself reads what the pipeline stored (:func:`load_release_data`).
    """
    from wxops.data.qc import apply_qc, check_target, features_after_qc
    from wxops.data.sources import read_source
    from wxops.features import build_features
    from wxops.split import assign_blocks, split_by_blocks

    used = list(dict.fromkeys([cfg.features.target, *cfg.features.predictors]))
    raw = read_source(cfg.data)
    clean, qc_report = apply_qc(raw, used, cfg.data.qc, target=cfg.features.target)
    check_target(clean, cfg.features.target, qc_report)
    obs = assign_blocks(clean, cfg.split)
    table = build_features(obs, features_after_qc(cfg.features, qc_report))
    return TestData(obs, table, split_by_blocks(table.frame, cfg.split))


def resolve_version(name: str, spec: str | None) -> str:
    """``7``, ``visibility/7``, ``@challenger`` or ``visibility@champion`` -> version number.

    No ``spec``: the newest version up for a decision, the challenger if one exists,
    else the champion (after a promotion no version holds ``challenger``).
    """
    if spec is None:
        aliases = tracking.alias_map(name)
        newest = aliases.get("challenger") or aliases.get("champion")
        if newest is None:
            raise ReleaseError(f"'{name}' has no challenger and no champion at "
                               f"{tracking.current_uri()}; `wxops run` registers one")
        return newest
    text = spec.strip()
    model, _, alias = text.partition("@")
    if alias:
        if model and model != name:
            raise ReleaseError(f"model '{model}' is not this project's registered model '{name}'")
        version = tracking.alias_map(name).get(alias)
        if version is None:
            raise ReleaseError(f"no version of '{name}' holds alias '{alias}'")
        return version
    number = text.rpartition("/")[2]
    if not number.isdigit():
        raise ReleaseError(f"cannot read model version {spec!r}; give e.g. 7, {name}/7 or "
                           f"{name}@challenger")
    tracking.get_model_version(name, number)  # raises with the list of versions
    return number


def _climatology(cfg: WxopsConfig, data: TestData) -> Climatology:
    """Climatology (mean and event frequencies) from every non-test row, capped alike."""
    seen = pd.concat([data.split.train, data.split.validation], ignore_index=True)
    return fit_climatology(seen, target=TARGET, valid_offset_hours=data.table.lead_time or 0,
                           thresholds=cfg.verify.thresholds, event=cfg.verify.event,
                           cap=cfg.verify.cap_for(data.table.target),
                           station_column=cfg.verify.station_column)


def _references(cfg: WxopsConfig, data: TestData, test: pd.DataFrame) -> dict[str, np.ndarray]:
    lead = data.table.lead_time
    clim = _climatology(cfg, data)
    valid = test["time"] + pd.Timedelta(hours=lead or 0)
    refs = {"climatology": clim.predict(valid, test.get(cfg.verify.station_column))}
    if lead is not None:
        refs["persistence"] = test[data.table.target].to_numpy(dtype=float)
    if data.nwp_column:
        refs["nwp"] = nwp_forecast(test, column=data.nwp_column)
    return refs


def _predict(model: Any, frame: pd.DataFrame, inputs: list[str]) -> np.ndarray:
    return np.asarray(model.predict(_naive_time(frame[inputs])), dtype=float).reshape(-1)


def _replay(cfg: WxopsConfig, data: TestData, test: pd.DataFrame, models: dict[str, Any],
            forecasts: dict[str, np.ndarray]) -> tuple[Any, float]:
    """The forecast-cycling replay of ``data`` and the hours one of its rows stands for."""
    lead = data.table.lead_time
    clim = _climatology(cfg, data)
    cycle = cfg.gate.replay_cycle_hours
    if data.kind == "nwp":
        rep = replay_init_times(test, forecasts, cycle_hours=cycle, climatology=clim,
                                nwp_column=data.nwp_column)
        n_cycles = max(1, rep.frame["issue_time"].nunique())
        return rep, cycle * n_cycles / len(rep.frame)
    feats = cfg.features.model_copy(update={"target": data.table.target, "lead_time": lead})
    rep = replay_cycles(models, data.obs, test, inputs=data.table.inputs, features=feats,
                        cycle_hours=cycle, climatology=clim, nwp_column=data.nwp_column)
    return rep, float(cycle)


def _crossed_stratum(frame: pd.DataFrame, forecasts: dict[str, np.ndarray],
                     obs: np.ndarray) -> pd.DataFrame:
    """RMSE/MAE/bias by lead time × station × hour of the valid time (UTC), for MOS."""
    ok = np.isfinite(obs) & np.all([np.isfinite(f) for f in forecasts.values()], axis=0)
    hours = pd.to_datetime(frame["valid_time"], utc=True).dt.hour.to_numpy()
    lead = pd.to_numeric(frame["lead_time"], errors="coerce").to_numpy()
    key = pd.Series([f"+{ld:g} h · {st} · {hr:02d} UTC" for ld, st, hr
                     in zip(lead, frame["station"].astype(str), hours, strict=True)])[ok]
    return stratify({k: v[ok] for k, v in forecasts.items()}, obs[ok], key.reset_index(drop=True))


def verification_summary(v: Verification, gate: GateResult, thresholds: list[float], *,
                         title: str) -> list[str]:
    """Five lines for the end of ``wxops run`` (see :meth:`Evaluation.summary`)."""
    refs = [s for s in v.sources if s != "candidate"]

    def row(score: str, fmt: str, counts: str | None) -> str:
        parts = []
        for src in ["candidate", *refs]:
            value = v.score(src, score)
            text = "n/a" if not np.isfinite(value) else format(round(value, 3) + 0.0, fmt)
            if counts is not None:
                hits = int(v.score(src, f"hits_{counts}"))
                text += f" ({hits}/{hits + int(v.score(src, f'misses_{counts}'))} events hit)"
            parts.append(f"{src} {text}")
        return f"  {score:<9} " + " | ".join(parts)

    lines = [f"verification of {title} on the test block ({v.n} forecasts, gate replay):",
             row("rmse", ".4g", None)]
    for t in thresholds[:2]:
        label = f"{t:g}"
        if f"ets_{label}" in v.scores.columns:
            lines.append(row(f"ets_{label}", ".3f", label))
    while len(lines) < 4:
        lines.append(row("mae", ".4g", None))
    status = [r.status for r in gate.rows]
    failed = [r.rule for r in gate.rows if r.status == "fail"]
    few = [f"{r.rule} (n={r.events})" for r in gate.rows if r.status == "too few events"]
    text = (f"  gate {'PASSED' if gate.passed else 'FAILED'}: {status.count('pass')} rule(s) "
            f"passed, {len(failed)} failed" + (f" [{'; '.join(failed)}]" if failed else ""))
    if few:
        text += f", too few events: {'; '.join(few)}"
    if status.count("skipped"):
        text += f", {status.count('skipped')} skipped"
    return [*lines[:4], text]


def _time_note(obs: pd.DataFrame) -> str:
    """Strata are in UTC; say in which local time the blocks (months) were cut.

    Inferred from the observations: the UTC hour most blocks begin at (a block whose first
    hours failed QC is outvoted).
    """
    if "block" not in obs.columns or obs.empty:
        return "hours and months in UTC"
    first = obs.groupby("block")["time"].min()
    starts = pd.to_datetime(pd.Series(first.index.str.slice(0, 7) + "-01", index=first.index),
                            errors="coerce", utc=True)
    offsets = ((first - starts).dt.total_seconds() / 3600).round().dropna()
    if offsets.empty:
        return "hours in UTC; the month stratum follows the blocks"
    common = offsets.mode().iloc[0]
    if (offsets == common).mean() > 0.5 and 0 < abs(common) < 24:
        return (f"hours in UTC; blocks (months) are cut in the data's local time: most "
                f"begin with the row of {int(common) % 24:02d}:00 UTC (TMY3: hour-ending local "
                f"standard time); the month stratum follows the blocks, not UTC months")
    return "hours in UTC; the month stratum follows the blocks"


def score_metrics(verification: Verification, replay: Verification) -> dict[str, float]:
    """The version's test-block scores as flat MLflow metrics, e.g. ``test_ets_1000``,
    ``test_ets_1000_persistence``, ``gate_rmse`` (the replay the gate judged)."""
    out: dict[str, float] = {}
    wanted = [c for c in verification.scores.columns if c == "n" or not c.startswith(
        ("correct_negatives",))]
    for prefix, v in (("test", verification), ("gate", replay)):
        for source in v.sources:
            suffix = "" if source == "candidate" else f"_{source}"
            for col in wanted:
                if col in v.scores.columns:
                    value = float(v.scores.at[source, col])
                    if np.isfinite(value):
                        out[f"{prefix}_{col}{suffix}"] = value
    return out


def evaluate_version(
    cfg: WxopsConfig,
    *,
    project_dir: Path,
    version: str,
    data: TestData | None = None,
    reason: str = "",
) -> Evaluation:
    """Technical tests, test-block verification, forecast-cycling replay, gate and report.

    A technical failure is recorded in the alias history as a refused attempt (when
    ``reason`` is given, i.e. on the way to a promotion) and raised as ReleaseError.
    """
    name = cfg.tracking.registered_model
    info = tracking.get_model_version(name, version)
    champion = tracking.alias_map(name).get("champion")
    if champion == version:
        champion = None  # verifying the champion itself: nothing to compare against
    data = data or load_release_data(name, version)
    keys = data.keys
    test = data.split.test.sort_values(keys).reset_index(drop=True)
    inputs = data.table.inputs
    uri = tracking.resolve_tracking_uri(cfg.tracking.uri, project_dir)
    model_uri = f"models:/{name}/{version}"

    sample = _naive_time(test[inputs].head(cfg.gate.latency_batch_rows))
    technical = run_technical_checks(uri, model_uri, sample, target=data.table.target,
                                     latency_budget_ms=cfg.gate.latency_budget_ms)
    if not technical.passed and not technical.checks[0].passed:
        if reason:
            _record(name, "rejected", previous=tracking.alias_map(name).get("champion"),
                    target=version, reason=reason, gate="technical-fail", forced=False)
        raise ReleaseError(f"{name} version {version}: {technical.summary()}")

    # Each model is judged on its own inputs, on the test rows (times, or station/init/lead
    # for NWP) both have: a changed feature set is a breaking change, not a crash.
    models = {"candidate": tracking.load_verified_model(name, version)[0]}
    frame = test.assign(_candidate=_predict(models["candidate"], test, inputs))
    notes: list[str] = []
    champ_data: TestData | None = None
    if champion is not None:
        champ_model, champ_sig = tracking.load_verified_model(name, champion)
        champ_inputs = [str(c.get("name")) for c in champ_sig.get("inputs", [])]
        champ_data = _champion_data(name, champion, data, champ_inputs)
        if champ_data.table.target != data.table.target or champ_data.kind != data.kind:
            notes.append(f"champion (version {champion}) predicts {champ_data.table.target} "
                         f"({champ_data.kind}), this version {data.table.target} ({data.kind}): "
                         "not comparable, rules against the champion are skipped")
            champ_data = None
        else:
            models["champion"] = champ_model
            ctest = champ_data.split.test
            right = ctest[keys].assign(_champion=_predict(champ_model, ctest,
                                                          champ_data.table.inputs))
            before = len(frame)
            frame = frame.merge(right, on=keys, how="inner")
            if len(frame) < before:
                notes.append(f"{before - len(frame)} of {before} test rows left out: the "
                             f"champion's own test table (version {champion}) lacks them")
            if champ_data.table.inputs != inputs:
                notes.append(f"champion (version {champion}) judged on its own inputs "
                             f"{champ_data.table.inputs}; this version on {inputs}")
    if frame.empty:
        raise ReleaseError(f"version {version} and champion {champion} share no test row")
    fcst = {"candidate": frame["_candidate"].to_numpy()}
    if "_champion" in frame:
        fcst["champion"] = frame["_champion"].to_numpy()
    fcst.update(_references(cfg, data, frame))
    lead = data.table.lead_time
    nwp = data.kind == "nwp"
    valid = frame["time"] + pd.Timedelta(hours=lead or 0)
    station = frame.get(cfg.verify.station_column)
    clim = _climatology(cfg, data)
    cap = cfg.verify.cap_for(data.table.target)
    verification = verify_forecasts(
        fcst, frame[TARGET], valid_time=valid, thresholds=cfg.verify.thresholds,
        event=cfg.verify.event, lead_time=frame["lead_time"] if nwp else lead, station=station,
        cap=cap, block=frame.get("block"),
        probabilities={t: clim.probability(valid, t, station) for t in cfg.verify.thresholds})
    verification.notes.extend(notes)
    if nwp:
        verification.strata["lead_time × station × hour UTC"] = _crossed_stratum(
            frame, fcst, frame[TARGET].to_numpy(dtype=float))

    if nwp:
        replay, hours_per_row = _replay(cfg, data, frame, {}, {
            k: v for k, v in fcst.items() if k in ("candidate", "champion")})
    else:
        replay, hours_per_row = _replay(cfg, data, test, {"candidate": models["candidate"]}, {})
        if champ_data is not None:
            theirs, _ = _replay(cfg, champ_data, champ_data.split.test.sort_values("time")
                                .reset_index(drop=True), {"champion": models["champion"]}, {})
            replay.frame = replay.frame.merge(theirs.frame[["issue_time", "champion"]],
                                              on="issue_time", how="inner")
    replay_fc = replay.forecasts()
    rvalid = replay.frame["valid_time"]
    rstation = replay.frame["station"] if nwp else None
    replayed = verify_forecasts(
        replay_fc, replay.frame["obs"], valid_time=rvalid, thresholds=cfg.verify.thresholds,
        event=cfg.verify.event, lead_time=replay.frame["lead_time"] if nwp else lead,
        station=rstation, cap=cap,
        probabilities={t: clim.probability(rvalid, t, rstation) for t in cfg.verify.thresholds})
    replayed.notes.extend([*replay.notes, *notes])
    gate = evaluate_gate(replayed, cfg.gate,
                         forecasts={k: cap_values(v, cap) for k, v in replay_fc.items()},
                         obs=cap_values(replay.frame["obs"], cap), seed=cfg.seed,
                         hours_per_row=hours_per_row,
                         lead_time=max(1, round((lead or 1) / max(hours_per_row, 1e-9))))

    out_dir = project_dir / "wxops-out" / "verify" / f"{name}-v{version}"
    histories = {info["tags"].get("config_name", f"version {version}"):
                 tracking.metric_histories(info["run_id"])}
    histories = {k: v for k, v in histories.items() if v}
    gate_rows = gate.to_dict()["rows"]
    if not technical.passed:
        gate_rows = [*gate_rows, *({"rule": f"technical: {c.name}", "status": "fail",
                                    "why": c.detail} for c in technical.checks if not c.passed)]
    replay_cols = ["n", *score_names(cfg.verify.thresholds, counts=("hits", "misses"),
                                     headline=True)]
    page = write_report(
        verification, out_dir, title=f"{name} version {version}",
        meta={"model": name, "version": version, "compared with champion":
              champion or "none (no champion, or this is the champion)",
              "data sha256": info["tags"].get("data_sha256", "?"),
              "configuration": info["tags"].get("config_name", "?"),
              "gate judged on": f"forecast-cycling replay, a cycle every "
                                f"{cfg.gate.replay_cycle_hours} h ({replayed.n} forecasts"
                                + (", all stations and lead times of each init time)"
                                   if nwp else ")"),
              "test table": "stored with the version's pipeline run (release/)",
              "references": "climatology (mean and event frequency by month and hour) from "
                            "training + validation rows; persistence; raw NWP if configured",
              "time": _time_note(data.obs),
              "technical tests": technical.summary()},
        gate_passed=gate.passed and technical.passed, gate_rows=gate_rows, histories=histories,
        model_types={m.name: m.type for m in cfg.models},
        extra_sections={"Replay scores (what the gate judges)":
                        replayed.scores[[c for c in replay_cols if c in replayed.scores]]
                        .rename_axis("source")},
    )
    summary = {"version": version, "champion": champion, "gate": gate.to_dict(),
               "technical": technical.to_dict(), "test_block": verification.to_dict(),
               "replay": replayed.to_dict()}
    (out_dir / "verification.json").write_text(json.dumps(json_ready(summary), indent=2,
                                                          default=str))
    tracking.log_folder_to_run(info["run_id"], out_dir, "verification")
    tracking.log_metrics_to_run(info["run_id"], score_metrics(verification, replayed))
    return Evaluation(name, version, champion, technical, verification, replayed, gate, page,
                      technical.probe.get("signature", {}))


def promote_version(
    cfg: WxopsConfig,
    *,
    project_dir: Path,
    version: str,
    reason: str,
    force: bool = False,
    data: TestData | None = None,
    model: str | None = None,
) -> Promotion:
    """Give ``version`` the champion alias if it passes the technical tests and the gate.

    ``force`` skips the verdict (recorded as forced), not the evaluation: the gate
    result still goes into the history and the release note. A refused attempt is
    recorded in the history and leaves every alias unchanged. ``model``: the registered
    model (default ``tracking.registered_model``); the probability model's versions are
    judged by the probability gate (:mod:`wxops.release.probability_cycle`).
    """
    if not reason.strip():
        raise ReleaseError("give a --reason: it goes into the alias history and release note")
    name = choose_model(cfg, model)
    probability = is_probability_model(cfg, name)
    tracking.get_model_version(name, version)
    aliases = tracking.alias_map(name)
    previous = aliases.get("champion")
    if previous == version:
        raise ReleaseError(f"{name} version {version} is already the champion")
    notify.check_channels(cfg.notify)
    evaluation: Evaluation | ProbabilityEvaluation
    if probability:
        from wxops.release.probability_cycle import evaluate_probability_version

        evaluation = evaluate_probability_version(cfg, project_dir=project_dir, version=version,
                                                  data=data, reason=reason)
    else:
        evaluation = evaluate_version(cfg, project_dir=project_dir, version=version, data=data,
                                      reason=reason)
    verdict = "pass" if evaluation.gate.passed else "fail"
    if not evaluation.technical.passed:
        verdict = "technical-fail"
    if not evaluation.passed and not force:
        _record(name, "rejected", previous=previous, target=version, reason=reason,
                gate=verdict, forced=False)
        notify.send(cfg.notify, notify.Notice(
            "rejection", f"{name} version {version} rejected: stays challenger",
            evaluation.why(), {"model": name, "version": version, "champion": previous or "none",
                               "reason": reason, "verdict": verdict}))
        return Promotion(name, version, False, previous,
                         f"version {version} stays challenger: {evaluation.why()}",
                         evaluation=evaluation)

    old = tracking.get_model_version(name, previous) if previous else None
    old_sig = tracking.model_signature(f"models:/{name}/{previous}") if previous else None
    old_target = _target_of(old)
    change = classify_change(evaluation.signature, old_sig, old_target=old_target,
                             new_target=_target_of(tracking.get_model_version(name, version)))
    semver = bump_version(old["tags"].get(SEMVER_TAG) if old else None, change)
    new_info = tracking.get_model_version(name, version)
    sig_diff = diff_signature(old_sig, evaluation.signature)
    note = release_note(
        model=name, version=version, semver=semver, change=change,
        previous={"version": previous, "semver": old["tags"].get(SEMVER_TAG)} if old else None,
        reason=reason, user=current_user(), time=now_utc(), forced=force and not evaluation.passed,
        gate_summary=evaluation.why(),
        params_diff=diff_params(_params(old), _params(new_info)) if old else [],
        data_diff=diff_params(_digests(old), _digests(new_info)) if old else [],
        scores=(evaluation.note_scores() if isinstance(evaluation, ProbabilityEvaluation)
                else _side_by_side(evaluation.replay)),
        signature_diff=sig_diff,
        score_heading=("Probability scores on the test block (Brier skill against the "
                       "climatological event frequency, events = observed events)"
                       if probability else None),
    )
    tags = {SEMVER_TAG: semver, CHANGE_TAG: change.kind}
    if change.kind == "breaking":  # the service names the change in its 4xx answers
        rows = list(sig_diff)
        while len(json.dumps(rows)) > 4800:  # the registry's tag limit
            rows.pop()
        tags[SIGNATURE_CHANGE_TAG] = json.dumps(rows)
    tracking.set_version_tags(name, version, tags)
    tracking.set_version_description(name, version, note)
    tracking.log_text_to_run(new_info["run_id"], note, f"release/release_note_{semver}.md")
    assignments: dict[str, str | None] = {"champion": version}
    if aliases.get("challenger") == version:
        assignments["challenger"] = None
    tracking.set_aliases(name, assignments)
    forced = force and not evaluation.passed
    _record(name, "promote", previous=previous, target=version, reason=reason,
            gate="forced" if forced else verdict, forced=forced)
    notify.send(cfg.notify, notify.Notice(
        "promotion", f"{name} {semver} (version {version}) is champion"
        + (" — FORCED past the gate" if forced else ""), note,
        {"model": name, "version": version, "semver": semver, "change": change.kind,
         "previous": previous or "none", "reason": reason}))
    return Promotion(name, version, True, previous,
                     f"version {version} is champion ({semver}, {change.kind}"
                     + (": " + "; ".join(change.reasons) if change.kind == "breaking" else "")
                     + ")"
                     + (" — forced past: " + evaluation.why() if forced else ""),
                     semver, change.kind, evaluation)


def rollback_champion(cfg: WxopsConfig, *, reason: str, project_dir: Path | None = None,
                      model: str | None = None) -> Promotion:
    """Give ``champion`` back to the version that held it before the current one.

    The version to restore first passes the technical tests in a fresh process (its
    recorded sha256 included): a damaged or swapped artifact is refused, recorded in the
    history, and the alias stays where it is.
    """
    if not reason.strip():
        raise ReleaseError("give a --reason: it goes into the alias history")
    name = choose_model(cfg, model)
    entries = read_history(cfg, name)
    current = tracking.alias_map(name).get("champion")
    target = rollback_target(entries, current)
    tracking.get_model_version(name, target)
    notify.check_channels(cfg.notify)
    technical = _technical_of(cfg, project_dir or Path.cwd(), target, name)
    if not technical.passed:
        _record(name, "rejected", previous=current, target=target, reason=f"rollback: {reason}",
                gate="technical-fail", forced=False)
        raise ReleaseError(f"rollback refused: {name} version {target} failed its technical "
                           f"tests, champion stays version {current}: {technical.summary()}")
    tracking.set_aliases(name, {"champion": target})
    _record(name, "rollback", previous=current, target=target, reason=reason, gate="n/a",
            forced=False)
    notify.send(cfg.notify, notify.Notice(
        "rollback", f"{name}: champion rolled back from version {current} to version {target}",
        f"Reason: {reason}", {"model": name, "from": str(current), "to": target, "reason": reason,
                              "by": current_user()}))
    return Promotion(name, target, True, current,
                     f"champion rolled back from version {current} to version {target}")


def _technical_of(cfg: WxopsConfig, project_dir: Path, version: str,
                  name: str | None = None) -> TechnicalResult:
    """The technical tests of ``version`` on a sample of its own stored test table."""
    name = name or cfg.tracking.registered_model
    try:
        data = load_release_data(name, version)
        sample = _naive_time(data.split.test[data.table.inputs].head(cfg.gate.latency_batch_rows))
        target = data.table.target
    except StoredDataError:  # an old version: a sample of the right shape from its example
        sample = tracking.model_input_example(f"models:/{name}/{version}")
        target = cfg.features.target
    uri = tracking.resolve_tracking_uri(cfg.tracking.uri, project_dir)
    return run_technical_checks(uri, f"models:/{name}/{version}", sample, target=target,
                                latency_budget_ms=cfg.gate.latency_budget_ms,
                              probability=is_probability_model(cfg, name))


def read_history(cfg: WxopsConfig, model: str | None = None) -> list[HistoryEntry]:
    """The alias history of the configured registered model (or ``model``), oldest first."""
    raw = tracking.read_alias_history(choose_model(cfg, model))
    return [HistoryEntry.from_dict(e) for e in raw]


def _params(info: dict[str, Any] | None) -> dict[str, str]:
    if info is None:
        return {}
    run = tracking.get_run_record(info["run_id"])
    params = {f"model.{k}": v for k, v in run["params"].items()
              if k not in ("n_train", "n_validation", "device_used")}
    parent = run["tags"].get("mlflow.parentRunId")
    if parent:
        params.update(tracking.get_run_record(parent)["params"])
    params.pop("config_hash", None)
    return params


def _target_of(info: dict[str, Any] | None) -> str | None:
    """The predicted variable of a version (the pipeline run's ``features.target``)."""
    if info is None:
        return None
    run = info["tags"].get("pipeline_run_id")
    return tracking.get_run_record(run)["params"].get("features.target") if run else None


def _digests(info: dict[str, Any] | None) -> dict[str, str]:
    if info is None:
        return {}
    return {k: info["tags"][k] for k in ("data_sha256", "training_data_sha256")
            if k in info["tags"]}


def _side_by_side(v: Verification) -> dict[str, dict[str, float]]:
    cols = ["n", *score_names(v.thresholds, counts=("hits", "misses", "false_alarms"))]
    return {c: {s: float(v.scores.at[s, c]) for s in v.sources} for c in cols
            if c in v.scores.columns}
