"""Verification of a registered probability version: the probability gate on its stored
test table, against climatology and the current champion of the same registered model.

The registry side (aliases, alias history, release note, notifications) is the one of
deterministic versions (:func:`wxops.release.cycle.promote_version`); this module only
knows how a probability version is judged. It reads the tables its pipeline run stored
(``release/``), never recomputes them, and judges the whole test block in time order:
the probabilities of the version and of the champion on the rows both tables share, the
climatological event frequency of the training and validation rows as reference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wxops import tracking
from wxops.config import WxopsConfig
from wxops.errors import ReleaseError
from wxops.features import TARGET
from wxops.release.gate import GateResult
from wxops.release.stored import TestData
from wxops.release.technical import TechnicalResult, run_technical_checks
from wxops.verify.probabilistic import ProbabilityVerification

_COLUMN = re.compile(r"^p_(below|above)_(-?[0-9.e+-]+)$")


@dataclass
class ProbabilityEvaluation:
    """Everything learned about one probability version before a promotion decision."""

    name: str
    version: str
    champion: str | None
    technical: TechnicalResult
    verification: ProbabilityVerification
    """The version's probabilities on the test rows shared with the champion."""
    gate: GateResult
    report: Path
    signature: dict[str, Any] = field(default_factory=dict)
    champion_verification: ProbabilityVerification | None = None

    @property
    def passed(self) -> bool:
        return self.technical.passed and self.gate.passed

    def why(self) -> str:
        """One line for the person at the terminal."""
        if not self.technical.passed:
            return self.technical.summary()
        return self.gate.summary()

    def summary(self, thresholds: list[float] | None = None) -> list[str]:
        """Brier skill per threshold with n and events, then the gate's verdict."""
        del thresholds  # the version's own thresholds are in its outputs
        lines = self.verification.summary(f"{self.name} version {self.version}")
        status = [r.status for r in self.gate.rows]
        failed = [r.rule for r in self.gate.rows if r.status == "fail"]
        lines.append(f"  {self.name} gate {'PASSED' if self.gate.passed else 'FAILED'}: "
                     f"{status.count('pass')} rule(s) passed, {len(failed)} failed"
                     + (f" [{'; '.join(failed)}]" if failed else "")
                     + (f", {status.count('too few events')} with too few events"
                        if "too few events" in status else ""))
        return lines

    def note_scores(self) -> dict[str, dict[str, float]]:
        """Release-note rows: Brier skill and Brier score per threshold with n and events,
        for the version, the champion and climatology."""
        out: dict[str, dict[str, float]] = {}
        sources = {"candidate": self.verification}
        if self.champion_verification is not None:
            sources["champion"] = self.champion_verification
        for threshold in self.verification.scores.index:
            label = f"{float(threshold):g}"
            row = self.verification.scores.loc[threshold]
            out[f"bss_{label}"] = {s: float(v.scores.at[threshold, "bss"])
                                   for s, v in sources.items()} | {"climatology": 0.0}
            out[f"brier_{label}"] = {s: float(v.scores.at[threshold, "brier"])
                                     for s, v in sources.items()} | {
                "climatology": float(row["brier_climatology"])}
            out[f"events_{label}"] = {"candidate": float(row["events"])}
        first = self.verification.scores.iloc[0]
        out["n"] = {"candidate": float(first["n"])}
        return out


def parse_outputs(names: list[str]) -> tuple[str, dict[float, str]]:
    """``["p_below_1000", "p_below_5000"]`` -> ``("below", {1000.0: "p_below_1000", ...})``.

    Raises:
        ReleaseError: a name is not a probability column, or the events differ.
    """
    events, columns = set(), {}
    for name in names:
        match = _COLUMN.match(name)
        if match is None:
            raise ReleaseError(f"output '{name}' is not a probability column (p_below_<t> or "
                               "p_above_<t>): not a probability version")
        events.add(match.group(1))
        columns[float(match.group(2))] = name
    if len(events) != 1:
        raise ReleaseError(f"outputs {names} mix events {sorted(events)} or name none")
    return events.pop(), columns


def _probabilities(model: Any, frame: pd.DataFrame, inputs: list[str],
                   columns: dict[float, str], outputs: list[str]) -> dict[float, np.ndarray]:
    """The model's probability per threshold on ``frame``'s rows."""
    from wxops.release.stored import naive_time

    pred = model.predict(naive_time(frame[inputs]))
    if not isinstance(pred, pd.DataFrame):
        pred = pd.DataFrame(np.asarray(pred, dtype=float).reshape(len(frame), -1),
                            columns=outputs)
    return {t: pred[c].to_numpy(dtype=float) for t, c in columns.items()}


def evaluate_probability_version(
    cfg: WxopsConfig,
    *,
    project_dir: Path,
    version: str,
    data: TestData | None = None,
    reason: str = "",
) -> ProbabilityEvaluation:
    """Technical tests, probabilistic verification, the probability gate and the report.

    A technical failure is recorded in the alias history as a refused attempt (when
    ``reason`` is given, i.e. on the way to a promotion) and raised as ReleaseError.
    """
    from wxops.release.history import record_alias_change
    from wxops.release.probability_gate import evaluate_probability_gate
    from wxops.release.stored import champion_data, load_release_data, naive_time
    from wxops.verify.probabilistic import climatological_frequency, verify_probabilities
    from wxops.verify.probability_report import write_probability_report

    name = cfg.tracking.probability_model
    if name is None:
        raise ReleaseError("tracking.probability_model is null: this project registers no "
                           "probability versions")
    info = tracking.get_model_version(name, version)
    champion = tracking.alias_map(name).get("champion")
    if champion == version:
        champion = None
    data = data or load_release_data(name, version)
    keys = data.keys
    test = data.split.test.sort_values(keys).reset_index(drop=True)
    inputs = data.table.inputs
    uri = tracking.resolve_tracking_uri(cfg.tracking.uri, project_dir)
    sample = naive_time(test[inputs].head(cfg.gate.latency_batch_rows))
    technical = run_technical_checks(uri, f"models:/{name}/{version}", sample,
                                     target=data.table.target,
                                     latency_budget_ms=cfg.gate.latency_budget_ms,
                                     probability=True)
    if not technical.passed and not technical.checks[0].passed:
        if reason:
            record_alias_change(name, "rejected", previous=champion, target=version,
                                reason=reason, gate="technical-fail", forced=False)
        raise ReleaseError(f"{name} version {version}: {technical.summary()}")

    model, signature = tracking.load_verified_model(name, version)
    outputs = [str(c.get("name")) for c in signature.get("outputs", [])]
    event, columns = parse_outputs(outputs)
    frame = test.copy()
    for t, values in _probabilities(model, test, inputs, columns, outputs).items():
        frame[f"_candidate_{t:g}"] = values
    notes: list[str] = []
    champ_cols: dict[float, str] = {}
    if champion is not None:
        champ_model, champ_sig = tracking.load_verified_model(name, champion)
        champ_outputs = [str(c.get("name")) for c in champ_sig.get("outputs", [])]
        champ_event, champ_cols = parse_outputs(champ_outputs)
        champ_inputs = [str(c.get("name")) for c in champ_sig.get("inputs", [])]
        champ_data = champion_data(name, champion, data, champ_inputs)
        if (champ_event != event or champ_data.table.target != data.table.target
                or champ_data.kind != data.kind):
            notes.append(f"champion (version {champion}) forecasts P({champ_event}) of "
                         f"{champ_data.table.target}, this version P({event}) of "
                         f"{data.table.target}: not comparable, rules against it are skipped")
            champ_cols = {}
        else:
            ctest = champ_data.split.test
            right = ctest[keys].copy()
            for t, values in _probabilities(champ_model, ctest, champ_data.table.inputs,
                                            champ_cols, champ_outputs).items():
                right[f"_champion_{t:g}"] = values
            before = len(frame)
            frame = frame.merge(right, on=keys, how="inner")
            if len(frame) < before:
                notes.append(f"{before - len(frame)} of {before} test rows left out: the "
                             f"champion's own test table (version {champion}) lacks them")
    if frame.empty:
        raise ReleaseError(f"{name} version {version} and champion {champion} share no test row")
    thresholds = sorted(columns)
    non_test = pd.concat([data.split.train[TARGET], data.split.validation[TARGET]])
    climatology = climatological_frequency(non_test, thresholds, event)
    obs = frame[TARGET].to_numpy(dtype=float)
    valid = frame["time"] + pd.Timedelta(hours=data.table.lead_time or 0)
    block = frame["block"] if "block" in frame.columns and cfg.split.block == "month" else None
    prob = {t: frame[f"_candidate_{t:g}"].to_numpy() for t in thresholds}
    champ = {t: frame[f"_champion_{t:g}"].to_numpy() for t in thresholds if t in champ_cols}
    verification = verify_probabilities(prob, obs, climatology=climatology, valid_time=valid,
                                        event=event, block=block)
    verification.notes.extend(notes)
    champ_verification = None
    if champ:
        champ_verification = verify_probabilities(
            champ, obs, climatology={t: climatology[t] for t in champ}, valid_time=valid,
            event=event, block=block)
    gate = evaluate_probability_gate(prob, obs, climatology=climatology,
                                     cfg=cfg.gate.probability, event=event,
                                     champion=champ or None,
                                     lead_time=max(1, data.table.lead_time or 1))
    out_dir = project_dir / "wxops-out" / "verify" / f"{name}-v{version}"
    page = write_probability_report(verification, out_dir,
                                    title=f"{name} version {version}: probability forecasts "
                                          f"(champion: {champion or 'none'})", gate=gate)
    summary = {"version": version, "champion": champion, "event": event,
               "gate": gate.to_dict(), "technical": technical.to_dict(),
               "test_block": verification.to_dict(),
               "champion_test_block": champ_verification.to_dict() if champ_verification else None}
    (out_dir / "verification.json").write_text(json.dumps(summary, indent=2, default=str))
    tracking.log_folder_to_run(info["run_id"], out_dir, "verification")
    metrics = {k: v for k, v in verification.metrics("test_").items() if np.isfinite(v)}
    tracking.log_metrics_to_run(info["run_id"], {**metrics, "test_gate_passed": float(gate.passed)})
    return ProbabilityEvaluation(name, version, champion, technical, verification, gate, page,
                                 technical.probe.get("signature", signature),
                                 champ_verification)
