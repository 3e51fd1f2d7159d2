"""Technical tests a version passes before it may serve: in a fresh process, as serving would.

Loading in the promoting process would hide problems a fresh server meets (a missing
module, a class pickled from ``__main__``, a corrupted artifact already in memory), so
the model is loaded by a new Python interpreter from the registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from wxops.data.qc import VARIABLES


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class TechnicalResult:
    """Every technical check and what the fresh process measured."""

    passed: bool
    checks: list[Check] = field(default_factory=list)
    probe: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        failed = [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]
        return "technical tests passed" if not failed else "technical tests failed: " + "; ".join(
            failed)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks],
                "probe": {k: v for k, v in self.probe.items() if k != "traceback"}}


def expected_schema(sample: pd.DataFrame) -> list[dict[str, str]]:
    """The input columns serving sends: name and MLflow type, from the current features."""
    out = []
    for name in sample.columns:
        kind = ("datetime" if pd.api.types.is_datetime64_any_dtype(sample[name])
                else "double" if pd.api.types.is_numeric_dtype(sample[name]) else "string")
        out.append({"name": str(name), "type": kind})
    return out


def check_signature(signature: dict[str, Any], expected: list[dict[str, str]], *,
                    probability: bool = False) -> Check:
    """The logged input signature names the same columns, with the same types, as serving;
    one output, or (``probability``) named ``p_below_<t>``/``p_above_<t>`` columns."""
    got = [{"name": c.get("name", ""), "type": c.get("type", "")} for c in signature["inputs"]]
    if got == expected:
        outputs = signature.get("outputs") or []
        if probability:
            names = [str(c.get("name", "")) for c in outputs]
            if not names or not all(n.startswith(("p_below_", "p_above_")) for n in names):
                return Check("signature", False, "expected named probability outputs "
                             f"(p_below_1000...), signature has {names or 'none'}")
            return Check("signature", True, f"{len(got)} inputs match the serving schema; "
                         f"outputs {', '.join(names)}")
        if len(outputs) != 1:
            return Check("signature", False, f"expected one output, signature has {outputs}")
        return Check("signature", True, f"{len(got)} inputs match the serving schema")
    want = {c["name"]: c["type"] for c in expected}
    have = {c["name"]: c["type"] for c in got}
    problems = []
    if sorted(set(want) - set(have)):
        problems.append(f"missing {sorted(set(want) - set(have))}")
    if sorted(set(have) - set(want)):
        problems.append(f"unexpected {sorted(set(have) - set(want))}")
    retyped = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if retyped:
        problems.append(f"types differ for {retyped}")
    if not problems:
        problems.append("column order differs")
    return Check("signature", False, "; ".join(problems))


def run_technical_checks(
    tracking_uri: str,
    model_uri: str,
    sample: pd.DataFrame,
    *,
    target: str,
    latency_budget_ms: float,
    timeout_s: float = 300.0,
    probability: bool = False,
) -> TechnicalResult:
    """Load ``model_uri`` in a fresh process and check signature, outputs and latency.

    Args:
        tracking_uri: the registry the fresh process connects to.
        model_uri: e.g. ``models:/visibility/7``.
        sample: a batch of inputs as serving would send them (naive-UTC ``time``).
        target: the predicted variable; its physical range (``wxops.data.qc.VARIABLES``)
            bounds valid predictions from below.
        latency_budget_ms: most milliseconds the batch prediction may take.
        timeout_s: the probe process is killed after this long.
        probability: the model predicts event probabilities (one named column per
            threshold): every value must lie in [0, 1].
    """
    with tempfile.TemporaryDirectory(prefix="wxops-probe-") as tmp:
        sample_path = Path(tmp) / "sample.parquet"
        result_path = Path(tmp) / "result.json"
        sample.to_parquet(sample_path)
        cmd = [sys.executable, "-m", "wxops.release.probe", tracking_uri, model_uri,
               str(sample_path), str(result_path)]
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  env=env, check=False)
        except subprocess.TimeoutExpired:
            return TechnicalResult(False, [Check("load", False,
                                                 f"no answer within {timeout_s:.0f} s")])
        if not result_path.exists():
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return TechnicalResult(False, [Check("load", False,
                                                 f"probe exited {proc.returncode}: {last[0]}")])
        probe = json.loads(result_path.read_text())
    if not probe.get("ok"):
        return TechnicalResult(False, [Check("load", False, str(probe.get("error")))], probe)
    checks = [Check("load", True, f"loaded in a fresh process in {probe['load_seconds']:.1f} s")]
    checks.append(check_signature(probe["signature"], expected_schema(sample),
                                  probability=probability))
    low = VARIABLES[target].low if target in VARIABLES else None
    per_row = max(1, len(probe["signature"].get("outputs") or [])) if probability else 1
    valid = probe["n_nonfinite"] == 0 and probe["n_predictions"] == len(sample) * per_row
    detail = (f"{probe['n_predictions']} predictions, {probe['n_nonfinite']} not finite, "
              f"range [{probe['min']:.4g}, {probe['max']:.4g}]")
    if probability:
        inside = probe["min"] is not None and probe["min"] >= 0.0 and probe["max"] <= 1.0
        valid = valid and inside
        detail += ", probabilities must lie in [0, 1]"
    elif low is not None:
        below = (probe["min"] is not None) and probe["min"] < low
        valid = valid and not below
        detail += f", physical minimum {low:g}"
    checks.append(Check("physical", valid, detail))
    fast = probe["latency_ms"] <= latency_budget_ms
    checks.append(Check("latency", fast, f"{probe['latency_ms']:.1f} ms for {len(sample)} rows "
                                         f"(budget {latency_budget_ms:g} ms)"))
    return TechnicalResult(all(c.passed for c in checks), checks, probe)
