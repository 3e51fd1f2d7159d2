"""Run in a fresh Python process by :mod:`wxops.release.technical`; not for direct use.

``python -m wxops.release.probe TRACKING_URI MODEL_URI SAMPLE.parquet RESULT.json`` loads
the model from the registry as a serving process would (checking its recorded sha256), predicts the sample once to
warm up and once timed, and writes what it saw as JSON. Any failure is written too, so
the parent reports it instead of a bare exit code.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    """Probe one model; always write the result file."""
    uri, model_uri, sample_path, result_path = argv
    result: dict[str, object] = {"model_uri": model_uri}
    try:
        import numpy as np
        import pandas as pd

        from wxops import tracking
        from wxops.startup import configure_process

        configure_process()
        tracking.connect(uri)
        started = time.perf_counter()
        name, _, version = model_uri.removeprefix("models:/").rpartition("/")
        if name and version.isdigit():  # a registered version: its recorded sha256 is checked
            model, result["signature"] = tracking.load_verified_model(name, version)
        else:
            model = tracking.load_sklearn_model(model_uri)
            result["signature"] = tracking.model_signature(model_uri)
        result["load_seconds"] = time.perf_counter() - started
        sample = pd.read_parquet(sample_path)
        model.predict(sample.head(8))
        started = time.perf_counter()
        pred = np.asarray(model.predict(sample), dtype=float).reshape(-1)
        result["latency_ms"] = 1000.0 * (time.perf_counter() - started)
        result["rows"] = len(sample)
        result["n_predictions"] = int(pred.size)
        result["n_nonfinite"] = int((~np.isfinite(pred)).sum())
        result["n_negative"] = int((pred < 0).sum())
        result["min"] = float(np.nanmin(pred)) if pred.size else None
        result["max"] = float(np.nanmax(pred)) if pred.size else None
        result["ok"] = True
    except Exception as exc:  # reported to the parent, which raises a clear error
        result["ok"] = False
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=5)
    Path(result_path).write_text(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
