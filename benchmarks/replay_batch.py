"""Forecast-cycling replay: one batch predict after assembling every cycle's input,
against the baseline of one predict call per cycle, on the reference test block.

Run: ``PYTHONPATH=src python benchmarks/replay_batch.py``. Prints the speed-up ratio
measured in this run (both variants give the same forecasts; tests check that).
"""

from __future__ import annotations

import time

import numpy as np

from wxops.config import WxopsConfig
from wxops.models.train import train_model
from wxops.release.cycle import load_test_data
from wxops.release.replay import assemble_inputs, replay_cycles


def main() -> None:
    cfg = WxopsConfig()
    data = load_test_data(cfg)
    model_cfg = next(m for m in cfg.models if m.name == "mlp-small")
    model = train_model(model_cfg, data.table, data.split, derived=list(cfg.features.derived),
                        seed=0).model
    test = data.split.test.sort_values("time").reset_index(drop=True)
    inputs = data.table.inputs

    started = time.perf_counter()
    rep = replay_cycles({"candidate": model}, data.obs, test, inputs=inputs,
                        features=cfg.features, cycle_hours=6)
    batch_s = time.perf_counter() - started

    started = time.perf_counter()
    history = data.obs.sort_values("time").reset_index(drop=True)
    per_cycle = []
    for t in rep.frame["issue_time"]:
        x = assemble_inputs(history[history["time"] <= t], t, inputs, cfg.features.target)
        per_cycle.append(float(model.predict(x)[0]))
    baseline_s = time.perf_counter() - started

    assert np.allclose(per_cycle, rep.frame["candidate"], rtol=1e-5), "forecasts differ"
    print(f"cycles: {len(rep.frame)}  batch: {batch_s:.2f} s  per-cycle predict: "
          f"{baseline_s:.2f} s  speed-up: {baseline_s / batch_s:.1f}x")


if __name__ == "__main__":
    main()
