"""Verify several forecasts of the same observations: scores, skill and strata.

:func:`verify_forecasts` is a pure stage: arrays in, a :class:`Verification` out. Every
forecast source (the candidate, the champion, the reference forecasts) is scored on the
same rows, so their scores compare like with like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wxops.errors import VerificationError
from wxops.verify.scoring import (
    brier,
    categorical_scores,
    continuous_scores,
    skill,
)

#: Order in which forecast sources appear in tables.
SOURCE_ORDER: tuple[str, ...] = ("candidate", "champion", "nwp", "persistence", "climatology")
#: Sources judged against the others (skill rows).
MODELS: tuple[str, ...] = ("candidate", "champion")
SEASONS: dict[int, str] = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM",
                           6: "JJA", 7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"}


@dataclass
class Verification:
    """Scores of each forecast source, skill against each reference, and strata."""

    scores: pd.DataFrame
    """Index: source; columns: score names (``rmse``, ``ets_1000``, ``hits_1000``...)."""
    skill: pd.DataFrame
    """Index: (source, reference); columns: score names with a defined skill."""
    strata: dict[str, pd.DataFrame]
    """Dimension (``hour``, ``month``, ``season``, ``lead_time``, ``station``) ->
    long table with columns ``group, source, mae, rmse, bias, n`` and, per threshold,
    ``ets_<t>``, ``pod_<t>``, ``far_<t>`` and ``events_<t>`` (observed events)."""
    thresholds: list[float]
    event: str
    n: int
    notes: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        return list(self.scores.index)

    def score(self, source: str, name: str) -> float:
        """One score of one source (KeyError names what exists)."""
        if source not in self.scores.index:
            raise KeyError(f"no forecast '{source}' verified (have {self.sources})")
        if name not in self.scores.columns:
            raise KeyError(f"no score '{name}' (have {list(self.scores.columns)})")
        return float(self.scores.at[source, name])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN as None)."""
        def clean(frame: pd.DataFrame) -> Any:
            return json_ready(frame.reset_index().to_dict(orient="records"))

        return {
            "n": self.n, "event": self.event, "thresholds": self.thresholds,
            "scores": clean(self.scores.rename_axis("source")),
            "skill": clean(self.skill),
            "strata": {k: json_ready(v.to_dict(orient="records")) for k, v in self.strata.items()},
            "notes": self.notes,
        }


def json_ready(value: Any) -> Any:
    """Replace NaN/inf floats by None, recursively, and numpy scalars by Python ones."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def verify_forecasts(
    fcst: dict[str, Any],
    obs: Any,
    *,
    valid_time: Any,
    thresholds: list[float],
    event: str = "below",
    lead_time: Any = None,
    station: Any = None,
    cap: float | None = None,
    probabilities: dict[float, Any] | None = None,
    block: Any = None,
) -> Verification:
    """Score every forecast in ``fcst`` against ``obs`` on the rows all of them have.

    Args:
        fcst: source name (``candidate``, ``champion``, ``climatology``, ``persistence``,
            ``nwp``...) -> forecast values aligned with ``obs``.
        obs: verifying observations.
        valid_time: time each forecast is valid for (stratified by hour, month, season).
        thresholds: event thresholds for the categorical scores.
        event: ``below`` (e.g. low visibility) or ``above`` the threshold.
        lead_time: hours ahead per row (a scalar for one lead time), for stratification.
        station: station id per row; stratified when it has several values.
        cap: common maximum applied to the observations and every forecast alike
            (visibility: the reporting cap, see ``wxops.verify.references``).
        probabilities: threshold -> the climatological event frequency per row; adds
            ``brier_<t>`` for every source (a deterministic forecast as 0/1 probability,
            climatology as its frequency), so skill against probabilistic climatology.
        block: block label per row (``1988-01``: the data's local-time month); the
            ``month`` stratum then follows the blocks instead of the UTC month.
    """
    if not fcst:
        raise VerificationError("no forecast to verify")
    from wxops.verify.references import cap_values
    from wxops.verify.scoring import event_operator

    o = cap_values(obs, cap)
    n = o.shape[0]
    arrays = {}
    for name, values in fcst.items():
        a = cap_values(values, cap)
        if a.shape != (n,):
            raise VerificationError(
                f"forecast '{name}' has shape {a.shape}; observations have ({n},)"
            )
        arrays[name] = a
    times = pd.to_datetime(pd.Series(np.asarray(valid_time)), utc=True)
    if len(times) != n:
        raise VerificationError(f"valid_time has {len(times)} rows; observations have {n}")
    common = np.isfinite(o) & np.all([np.isfinite(a) for a in arrays.values()], axis=0)
    notes = []
    if not common.any():
        raise VerificationError("no row where the observation and every forecast are present")
    if (~common).sum():
        notes.append(f"{int((~common).sum())} rows without every forecast left out")
    o = o[common]
    arrays = {k: v[common] for k, v in arrays.items()}
    times = times[common].reset_index(drop=True)
    if cap is not None:
        notes.append(f"observations and every forecast capped at {cap:g} (common reporting "
                     "maximum)")
    order = [s for s in SOURCE_ORDER if s in arrays] + sorted(set(arrays) - set(SOURCE_ORDER))

    rows = {}
    for name in order:
        rows[name] = {**continuous_scores(arrays[name], o),
                      **categorical_scores(arrays[name], o, thresholds=thresholds, event=event)}
    if probabilities:
        op = event_operator(event)
        for threshold, prob in probabilities.items():
            p = np.asarray(prob, dtype=float)[common]
            observed = op(o, threshold).astype(float)
            keep = np.isfinite(p)
            for name in order:
                f = p if name == "climatology" else op(arrays[name], threshold).astype(float)
                rows[name][f"brier_{threshold:g}"] = (brier(f[keep], observed[keep])
                                                      if keep.any() else float("nan"))
    table = pd.DataFrame.from_dict(rows, orient="index")

    skill_rows = {}
    for model in [m for m in MODELS if m in arrays]:
        refs = [s for s in order if s != model and not (model == "champion" and s == "candidate")]
        for ref in refs:
            skill_rows[(model, ref)] = {
                col: skill(col, table.at[model, col], table.at[ref, col])
                for col in table.columns
            }
    skill_table = pd.DataFrame.from_dict(skill_rows, orient="index").dropna(axis=1, how="all")
    if not skill_table.empty:
        skill_table.index = skill_table.index.set_names(["source", "reference"])

    months = times.dt.month
    if block is not None:
        labels = pd.Series(np.asarray(block)[common]).astype(str)
        months = pd.to_numeric(labels.str[5:7], errors="coerce").fillna(months).astype(int)
    groups: dict[str, pd.Series] = {
        "hour": times.dt.hour, "month": months, "season": months.map(SEASONS),
    }
    if lead_time is not None:
        lead = np.broadcast_to(np.asarray(lead_time), (n,))[common]
        groups["lead_time"] = pd.Series(lead)
    if station is not None:
        st = pd.Series(np.asarray(station)[common])
        if st.nunique() > 1:
            groups["station"] = st
    strata = {dim: stratify(arrays, o, key, thresholds=thresholds, event=event)
              for dim, key in groups.items()}
    return Verification(table, skill_table, strata, list(thresholds), event, int(o.size), notes)


def stratify(
    fcst: dict[str, np.ndarray],
    obs: np.ndarray,
    key: pd.Series,
    *,
    thresholds: list[float] | None = None,
    event: str = "below",
) -> pd.DataFrame:
    """MAE, RMSE, bias (and ETS, POD, FAR, event count per threshold) of each source
    within each group of ``key``; ``n`` rows per group."""
    rows = []
    values = key.to_numpy()
    for group in pd.unique(values):
        mask = values == group
        for name, f in fcst.items():
            s = continuous_scores(f[mask], obs[mask])
            row = {"group": group, "source": name, "mae": s["mae"], "rmse": s["rmse"],
                   "bias": s["bias"], "n": int(s["n"])}
            if thresholds:
                c = categorical_scores(f[mask], obs[mask], thresholds=thresholds, event=event)
                for t in thresholds:
                    label = f"{t:g}"
                    row.update({f"ets_{label}": c[f"ets_{label}"],
                                f"pod_{label}": c[f"pod_{label}"],
                                f"far_{label}": c[f"far_{label}"],
                                f"events_{label}": int(c[f"hits_{label}"]
                                                       + c[f"misses_{label}"])})
            rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["group", "source"], kind="stable").reset_index(drop=True)
