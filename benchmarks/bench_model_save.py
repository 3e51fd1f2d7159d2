"""Saving a small scikit-learn model with explicit pip requirements vs MLflow's inference.

MLflow infers requirements by importing the model in a subprocess (~3 s); wxops passes
them explicitly. Both save the same fitted model into fresh local folders.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from _common import time_call
from sklearn.linear_model import Ridge


def main() -> None:
    import mlflow.sklearn
    import sklearn

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 5)), rng.normal(size=200)
    model = Ridge().fit(x, y)
    reqs = [f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"]
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(100))

        def save(explicit: bool) -> None:
            path = Path(tmp) / f"m{next(counter)}"
            mlflow.sklearn.save_model(model, str(path), pip_requirements=reqs if explicit else None,
                                      serialization_format="cloudpickle")

        save(True)  # warm imports once, outside the timing
        explicit = time_call(lambda: save(True), repeat=5)
        inferred = time_call(lambda: save(False), repeat=3)
    print(f"save with explicit requirements: {explicit:.3f} s")
    print(f"save with inferred requirements: {inferred:.3f} s")
    print(f"ratio explicit/inferred: {explicit / inferred:.3f}")


if __name__ == "__main__":
    main()
