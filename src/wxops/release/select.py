"""Which configuration to register: the gate chooses, not the training loss.

A model trained on squared error in metres can have the best validation RMSE and never
forecast fog. :func:`select_configuration` judges every configuration on the
*validation* block with the gate's reference rules (climatology, persistence, raw NWP;
the champion is judged later, on the test block) and registers, among those that fail
the fewest rules, the one with the best selection metric. The test block stays unseen
until the registered version is verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wxops.config import WxopsConfig
from wxops.release.gate import GateResult, evaluate_gate
from wxops.verify.evaluate import verify_forecasts
from wxops.verify.references import fit_climatology
from wxops.verify.score_table import lookup, names_of


@dataclass
class Selection:
    """The chosen configuration and each configuration's verdict on validation."""

    best: str
    verdicts: dict[str, GateResult] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    """Configuration -> validation scores (``val_ets_1000``...), for the config runs."""
    message: str = ""


def select_configuration(
    cfg: WxopsConfig,
    predictions: dict[str, Any],
    metrics: dict[str, dict[str, float]],
    *,
    train: pd.DataFrame,
    validation: pd.DataFrame,
) -> Selection:
    """Choose the configuration to register (a pure stage).

    Args:
        cfg: the config (gate rules, verify thresholds, selection metric).
        predictions: configuration -> its forecasts of the validation rows.
        metrics: configuration -> training metrics (holds the selection metric).
        train, validation: the split's rows (``time``, ``y``, the observed target).
    """
    from wxops.features import TARGET

    selection = cfg.tracking.selection_metric
    by_metric = sorted(metrics, key=lambda n: metrics[n][selection])
    rules = [r for r in cfg.gate.rules if r.against != "champion"]
    if not rules or not predictions:
        return Selection(by_metric[0], message=f"best {selection}: {by_metric[0]}")
    lead = cfg.features.lead_time
    valid = validation["time"] + pd.Timedelta(hours=lead or 0)
    cap = cfg.verify.cap_for(cfg.features.target)
    clim = fit_climatology(train, target=TARGET, valid_offset_hours=lead or 0,
                           thresholds=cfg.verify.thresholds, event=cfg.verify.event, cap=cap)
    refs: dict[str, Any] = {"climatology": clim.predict(valid)}
    if lead is not None and cfg.features.target in validation.columns:
        refs["persistence"] = validation[cfg.features.target].to_numpy(dtype=float)
    if cfg.verify.nwp_column and cfg.verify.nwp_column in validation.columns:
        refs["nwp"] = validation[cfg.verify.nwp_column].to_numpy(dtype=float)
    gate_cfg = cfg.gate.model_copy(update={"rules": rules})
    verdicts: dict[str, GateResult] = {}
    scores: dict[str, dict[str, float]] = {}
    for name in by_metric:
        v = verify_forecasts({"candidate": np.asarray(predictions[name], dtype=float), **refs},
                             validation[TARGET], valid_time=valid,
                             thresholds=cfg.verify.thresholds, event=cfg.verify.event, cap=cap)
        verdicts[name] = evaluate_gate(v, gate_cfg)
        scores[name] = {f"val_{c}": float(v.scores.at["candidate", c])
                        for c in v.scores.columns
                        if c.startswith(("hits_", *(f"{n}_" for n in names_of("categorical"))))
                        and np.isfinite(v.scores.at["candidate", c])}
    fails = {n: len(verdicts[n].failed_rules) for n in by_metric}
    best = min(by_metric, key=lambda n: (fails[n], metrics[n][selection]))
    if fails[best] == 0:
        message = (f"{best} registered: best {selection} of the configurations passing the "
                   f"gate's reference rules on validation")
    else:
        failed = verdicts[best].failed_rules
        message = (f"no configuration passes all of the gate's reference rules on validation; "
                   f"{best} fails the fewest ({'; '.join(failed)})")
        for rule in failed:
            score = rule.split(" ")[0]
            entry = lookup(score)
            if entry is not None and entry.kind == "categorical" and entry.direction == "higher":
                top = max(by_metric, key=lambda n: scores[n].get(f"val_{score}", -np.inf))
                message += (f". No configuration beats {rule.split(' vs ')[1].split(':')[0]} on "
                            f"{score} (best {top}: {scores[top].get(f'val_{score}', float('nan')):.3f})")
                break
    return Selection(best, verdicts, scores, message)
