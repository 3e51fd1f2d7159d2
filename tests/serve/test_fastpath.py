"""The compiled NumPy predictor gives the model's own numbers, or is not used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from tests.serve.conftest import Registry
from wxops.features import MeteoFeatures
from wxops.serve.fastpath import _compile_estimator, build_predictor, synthetic_batch, to_frame
from wxops.serve.payload import InputSchema


@pytest.fixture(scope="module")
def registered(registry: Registry) -> tuple[object, InputSchema]:
    from wxops import tracking

    tracking.connect(registry.uri)
    servable = tracking.load_servable_model("visibility", "1")
    return servable.model, InputSchema.from_signature(servable.inputs)


def test_compiled_path_matches_model_predict(registered: tuple[object, InputSchema]) -> None:
    model, schema = registered
    predictor = build_predictor(model, schema)
    assert predictor.path == "numpy"
    batch = synthetic_batch(schema, 1000, seed=99)
    # leap-day and end-of-year times, where day-of-year arithmetic goes wrong first
    batch.columns["time"][:3] = np.array(["2020-02-29T23:59:59", "2021-12-31T23:30:00",
                                          "2000-03-01T00:00:00"], dtype="datetime64[ns]")
    want = model.predict(to_frame(batch, schema))  # type: ignore[attr-defined]
    np.testing.assert_allclose(predictor.fn(batch), want, rtol=1e-9)


def _schema() -> InputSchema:
    return InputSchema.from_signature([{"name": n, "type": "double"}
                                       for n in ("t2m", "td2m", "wind_speed", "wind_dir")])


def _fit(pipeline: Pipeline, schema: InputSchema) -> Pipeline:
    batch = synthetic_batch(schema, 50)
    frame = to_frame(batch, schema)
    return pipeline.fit(frame, frame["t2m"] * 2.0)


def test_other_pipelines_use_the_model_predict() -> None:
    schema = _schema()
    model = _fit(Pipeline([("f", FunctionTransformer()), ("m", LinearRegression())]), schema)
    predictor = build_predictor(model, schema)
    assert predictor.path == "dataframe"
    batch = synthetic_batch(schema, 4, seed=1)
    np.testing.assert_allclose(predictor.fn(batch), model.predict(to_frame(batch, schema)))


class _Drifting(MeteoFeatures):
    """A MeteoFeatures subclass whose transform differs: must not be compiled."""

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return super().transform(X) + 1.0


def test_subclasses_are_not_compiled() -> None:
    schema = _schema()
    model = _fit(Pipeline([("f", _Drifting(derived=["wind_components"])),
                           ("m", LinearRegression())]), schema)
    assert build_predictor(model, schema).path == "dataframe"


def test_compiled_wind_components_match() -> None:
    schema = _schema()
    model = _fit(Pipeline([("f", MeteoFeatures(derived=["wind_components",
                                                        "dewpoint_depression"])),
                           ("m", LinearRegression())]), schema)
    predictor = build_predictor(model, schema)
    assert predictor.path == "numpy"
    batch = synthetic_batch(schema, 64, seed=5)
    np.testing.assert_allclose(predictor.fn(batch), model.predict(to_frame(batch, schema)),
                               rtol=1e-9)


def test_served_predictions_equal_training_model_on_the_reference_data(
    registered: tuple[object, InputSchema],
) -> None:
    """The champion answers a request of the whole reference year (sent as ``/predict``
    gets it) through the fast path with the numbers of the trained model's own predict."""
    from wxops.config import DataConfig
    from wxops.data.sources import read_source
    from wxops.serve.payload import table_from_predict, validate_table

    model, schema = registered
    obs = read_source(DataConfig())
    frame = obs[[c.name for c in schema.columns]].dropna().copy()
    frame["time"] = frame["time"].dt.tz_convert("UTC").dt.tz_localize(None)
    predictor = build_predictor(model, schema)
    assert predictor.path == "numpy"
    batch = validate_table(table_from_predict({"data": frame.to_json()}), schema)
    assert batch.n_rows == len(frame) > 8000
    want = model.predict(frame)  # type: ignore[attr-defined]
    np.testing.assert_allclose(predictor.fn(batch), want, rtol=1e-9)


@pytest.mark.parametrize("log_target", [False, True])
def test_torch_mlp_is_compiled_to_the_same_numbers(log_target: bool) -> None:
    """The MLP champion's network runs as its own tensor operations, without nn.Module
    calls: the answers are those of the model's predict, bit for bit, for one row and
    for many (the arithmetic is PyTorch's in both)."""
    pytest.importorskip("torch")
    from wxops.models.mlp import TorchMLPRegressor
    from wxops.models.target import LogTargetRegressor

    schema = InputSchema.from_signature(
        [{"name": "time", "type": "datetime"},
         *({"name": n, "type": "double"} for n in ("t2m", "td2m", "wind_speed", "wind_dir"))])
    batch = synthetic_batch(schema, 200, seed=3)
    frame = to_frame(batch, schema)
    mlp = TorchMLPRegressor(hidden_dim=8, epochs=2, device="cpu", random_state=1)
    estimator = LogTargetRegressor(mlp) if log_target else mlp
    model = Pipeline([("features", MeteoFeatures(derived=["wind_components", "cyclic_time",
                                                          "dewpoint_depression"])),
                      ("model", estimator)])
    model.fit(frame, 1000.0 + 50.0 * frame["wind_speed"])
    assert _compile_estimator(model.steps[1][1]) is not None  # not the estimator's predict
    predictor = build_predictor(model, schema)
    assert predictor.path == "numpy"
    for rows in (1, 7, 200):
        part = synthetic_batch(schema, rows, seed=rows)
        np.testing.assert_array_equal(predictor.fn(part),
                                      model.predict(to_frame(part, schema)))
