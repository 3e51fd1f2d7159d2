"""Predictors: validated NumPy columns in, float64 predictions out (one per row, or rows x
outputs for models answering named columns, such as probabilities per threshold).

A wxops model is a scikit-learn ``Pipeline`` of :class:`~wxops.features.MeteoFeatures`
and an estimator. Its pandas-based ``predict`` spends ~90 % of a single-row call building
DataFrames (several milliseconds); the same arithmetic on NumPy arrays takes tens of
microseconds. :func:`build_predictor` therefore compiles such a pipeline into a NumPy
function, **checks it against the model's own predict** on a few hundred synthetic rows
spanning the physical ranges, and uses it only if every prediction agrees. Anything else
(other transformers, pyfunc models, a mismatch) is served through the model's own
``predict`` on a DataFrame: slower, never different.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from wxops.serve.payload import Batch, InputSchema

log = logging.getLogger(__name__)

Predict = Callable[[Batch], np.ndarray]

#: Rows of the synthetic check a compiled predictor must reproduce.
CHECK_ROWS = 256
_RTOL = 1e-9


@dataclass(frozen=True)
class Predictor:
    """How a loaded model is called: ``fn(batch) -> predictions`` and which path it is."""

    fn: Predict
    path: str
    """``numpy`` (compiled, verified) or ``dataframe`` (the model's own predict)."""


def build_predictor(model: Any, schema: InputSchema, *, seed: int = 0) -> Predictor:
    """Fastest predictor of ``model`` that gives the same numbers as ``model.predict``."""
    generic = Predictor(_dataframe_predict(model, schema), "dataframe")
    compiled = _compile_meteo_pipeline(model, schema)
    if compiled is None:
        return generic
    sample = synthetic_batch(schema, CHECK_ROWS, seed=seed)
    try:
        want = generic.fn(sample)
        got = compiled(sample)
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        log.warning("compiled predictor failed its check (%s); using the model's predict", exc)
        return generic
    scale = np.maximum(np.abs(want), 1.0)
    if got.shape != want.shape or not np.all(np.abs(got - want) <= _RTOL * scale):
        log.warning("compiled predictor disagrees with the model's predict; using the latter")
        return generic
    return Predictor(compiled, "numpy")


def synthetic_batch(schema: InputSchema, n_rows: int, *, seed: int = 0) -> Batch:
    """Random valid input: numbers uniform over each physical range, times over 1980-2040."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for col in schema.columns:
        if col.type == "datetime":
            start = np.datetime64("1980-01-01T00:00", "m").astype(np.int64)
            minutes = rng.integers(0, 60 * 24 * 366 * 60, n_rows)
            columns[col.name] = (start + minutes).astype("datetime64[m]").astype("datetime64[ns]")
        elif col.type == "string":
            columns[col.name] = np.asarray([f"S{i % 3}" for i in range(n_rows)], dtype=object)
        elif col.low is not None and col.high is not None:
            columns[col.name] = rng.uniform(col.low, col.high, n_rows)
        else:
            columns[col.name] = rng.normal(0.0, 10.0, n_rows)
    return Batch(columns, n_rows)


def per_row(out: Any, n_rows: int) -> np.ndarray:
    """Predictions as float64: shape ``(n,)`` for one value per row, ``(n, k)`` for
    ``k`` named outputs (probabilities per threshold)."""
    arr = np.asarray(out, dtype=np.float64).reshape(n_rows, -1)
    return arr[:, 0] if arr.shape[1] == 1 else arr


def to_frame(batch: Batch, schema: InputSchema) -> Any:
    """The batch as a DataFrame in signature column order."""
    import pandas as pd

    return pd.DataFrame({c.name: batch.columns[c.name] for c in schema.columns
                         if c.name in batch.columns})


def _dataframe_predict(model: Any, schema: InputSchema) -> Predict:
    def predict(batch: Batch) -> np.ndarray:
        out = model.predict(to_frame(batch, schema))
        return per_row(out, batch.n_rows)

    return predict


def _compile_meteo_pipeline(model: Any, schema: InputSchema) -> Predict | None:
    """A NumPy version of ``Pipeline([MeteoFeatures, estimator])``, or None if not one."""
    from sklearn.pipeline import Pipeline

    from wxops.features import MeteoFeatures, derive_features

    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        return None
    features, estimator = model.steps[0][1], model.steps[1][1]
    if type(features) is not MeteoFeatures or not hasattr(estimator, "predict"):
        return None
    derived = set(features.derived)
    if not derived <= {"dewpoint_depression", "wind_components", "cyclic_time"}:
        return None
    inputs = [c.name for c in schema.columns]
    try:
        probe = synthetic_batch(schema, 2)
        out_columns = list(features.transform(to_frame(probe, schema)).columns)
    except (ValueError, KeyError, TypeError):
        return None
    final = _compile_estimator(estimator) or estimator.predict

    def predict(batch: Batch) -> np.ndarray:
        # the feature maths of training itself (wxops.features), on the batch's arrays
        cols = derive_features({name: batch.columns[name] for name in inputs}, derived)
        # columns x rows, transposed: the memory layout of the array a DataFrame gives the
        # estimator (column-major), so matrix products add up in the same order
        # (np.array of the list: the same array as np.stack, a quarter of its cost)
        x = np.array([cols[name] for name in out_columns], dtype=np.float64).T
        return per_row(final(x), batch.n_rows)

    return predict


def _compile_estimator(estimator: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """Plain-array arithmetic for standard scalers and linear models (and pipelines of
    them), skipping scikit-learn's per-call input validation (~0.1 ms per step), and the
    PyTorch MLP's own tensor operations without ``nn.Module`` calls (optionally behind
    a log target); None for anything else (its own ``predict`` is used)."""
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from wxops.models.mlp import TorchMLPRegressor
    from wxops.models.target import LogTargetRegressor

    if type(estimator) is TorchMLPRegressor:
        return _torch_mlp(estimator)
    if type(estimator) is LogTargetRegressor and hasattr(estimator, "regressor_"):
        inner = _compile_estimator(estimator.regressor_)
        if inner is None:
            return None
        return lambda x: np.asarray(np.expm1(inner(x)), dtype=float)

    if isinstance(estimator, Pipeline):
        steps = [s for _, s in estimator.steps if s not in (None, "passthrough")]
        if not steps or not all(type(s) is StandardScaler for s in steps[:-1]):
            return None
        head = [_scaler(s) for s in steps[:-1]]
        last = _compile_estimator(steps[-1])
        if last is None:
            return None

        def chain(x: np.ndarray) -> np.ndarray:
            for fn in head:
                x = fn(x)
            return last(x)

        return chain
    if type(estimator) in (Ridge, LinearRegression, Lasso, ElasticNet):
        coef = np.asarray(estimator.coef_, dtype=np.float64)
        if coef.ndim != 1:
            return None
        intercept = float(np.asarray(estimator.intercept_).reshape(-1)[0])
        return lambda x: x @ coef + intercept
    return None


def _scaler(scaler: Any) -> Callable[[np.ndarray], np.ndarray]:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None

    def apply(x: np.ndarray) -> np.ndarray:
        if mean is not None:
            x = x - mean
        if scale is not None:
            x = x / scale
        return x

    return apply


def _torch_mlp(estimator: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """``TorchMLPRegressor.predict`` as the same tensor operations on detached weights.

    ``nn.Sequential`` of ``Linear``/``ReLU`` costs ~5 us of Python per module and call
    (hooks, ``__call__`` dispatch, the ``no_grad`` context), several times the arithmetic
    of one row; ``F.linear``/``torch.relu`` on the same weights are the operations those
    modules run (ReLU in place, on the layer's fresh output), so the numbers are the same
    (and :func:`build_predictor` checks them).
    None for any other network layout.
    """
    net = getattr(estimator, "net_", None)
    if net is None:
        return None
    import torch
    from torch import nn

    if type(net) is not nn.Sequential:
        return None
    layers: list[tuple[Any, Any] | None] = []  # (weight, bias) of a Linear, None: ReLU
    for module in net:
        if type(module) is nn.Linear:
            weight = module.weight.detach()
            if weight.device.type != "cpu":
                return None
            layers.append((weight, None if module.bias is None else module.bias.detach()))
        elif type(module) is nn.ReLU:
            layers.append(None)
        else:
            return None
    mean, std = estimator.x_mean_, estimator.x_std_
    y_mean, y_std = estimator.y_mean_, estimator.y_std_
    linear = torch.nn.functional.linear

    def predict(x: np.ndarray) -> np.ndarray:
        scaled = ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32,
                                                                         copy=False)
        h = torch.from_numpy(scaled)
        for layer in layers:
            h = h.relu_() if layer is None else linear(h, layer[0], layer[1])
        out: np.ndarray = h.squeeze(-1).numpy()
        return out.astype(np.float64) * y_std + y_mean

    return predict
