"""Request shapes and validation, as pure functions (no server)."""

from __future__ import annotations

import numpy as np
import pytest

from wxops.errors import PayloadError, ServeError
from wxops.serve.payload import (
    InputSchema,
    decode_json,
    table_from_invocations,
    table_from_predict,
    validate_table,
)

SCHEMA = InputSchema.from_signature([
    {"name": "time", "type": "datetime", "required": True},
    {"name": "t2m", "type": "double", "required": True},
    {"name": "count", "type": "long", "required": True},
    {"name": "flag", "type": "boolean", "required": False},
    {"name": "station", "type": "string", "required": False},
])


def test_ranges_come_from_the_qc_table() -> None:
    t2m = SCHEMA.columns[1]
    assert (t2m.low, t2m.high, t2m.units) == (-80.0, 60.0, "degC")
    assert SCHEMA.columns[2].low is None


def test_pandas_index_orient_aligns_by_index() -> None:
    table = table_from_predict({"data": '{"t2m": {"0": 1.0, "1": 2.0}, '
                                        '"count": {"1": 5, "0": 4}}'})
    assert table == {"t2m": [1.0, 2.0], "count": [4, 5]}


def test_epoch_milliseconds_and_iso_times_agree() -> None:
    iso = validate_table({"time": ["1988-01-01T06:00:00"], "t2m": [1.0], "count": [1]}, SCHEMA)
    epoch = validate_table({"time": [568015200000], "t2m": [1.0], "count": [1]}, SCHEMA)
    offset = validate_table({"time": ["1988-01-01T07:00:00+01:00"], "t2m": [1.0], "count": [1]},
                            SCHEMA)
    assert iso.columns["time"][0] == epoch.columns["time"][0] == offset.columns["time"][0]


def test_optional_typed_columns() -> None:
    batch = validate_table({"time": ["2020-01-01"], "t2m": [1], "count": [2.0], "flag": [True],
                            "station": ["LSZH"]}, SCHEMA)
    assert batch.columns["t2m"].dtype == np.float64
    assert batch.columns["flag"].dtype == np.bool_


@pytest.mark.parametrize(("table", "message"), [
    ({"time": ["2020-01-01"], "t2m": [1.0], "count": [1.5]}, r"count, row 0: expected an integer"),
    ({"time": ["2020-01-01"], "t2m": [1.0], "count": [1], "flag": ["yes"]},
     r"flag, row 0: expected true or false, got string 'yes'"),
    ({"time": ["2020-01-01"], "t2m": [1.0], "count": [1], "station": [3]},
     r"station, row 0: expected a string, got int"),
    ({"time": ["2020-01-01", 5], "t2m": [1.0, 2.0], "count": [1, 1]}, r"time: mixes ISO"),
    ({"time": [None], "t2m": [1.0], "count": [1]}, r"time, row 0: missing value"),
    ({"time": [{"a": 1}], "t2m": [1.0], "count": [1]}, r"time, row 0: expected an ISO 8601"),
    ({"time": [float("nan")], "t2m": [1.0], "count": [1]}, r"time, row 0: nan is not a time"),
    ({"time": ["2020-01-01"], "t2m": [10**400], "count": [1]}, r"t2m: a value is too large"),
    ({"time": ["2020-01-01"], "t2m": [1.0], "count": []}, r"count: has 0 values, time has 1"),
    ({"time": [], "t2m": [], "count": []}, r"no rows"),
])
def test_validation_errors(table: dict[str, list[object]], message: str) -> None:
    with pytest.raises(PayloadError, match=message) as info:
        validate_table(table, SCHEMA)
    assert info.value.status == 422


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"data": {"t2m": [1.0], "count": {"0": 1}}}, 422, r"count: expected a list of values"),
    ({"data": {"t2m": {"0": 1.0}, "count": [1]}}, 422, r"count: expected an object of"),
    ({"data": {"t2m": {"0": 1.0}, "count": {"0": 1, "1": 2}}}, 422, r"count: has 2 values"),
    ({"data": {"columns": ["t2m", "t2m"], "data": [[1, 2]]}}, 422, r"t2m: column given twice"),
    ({"data": {"columns": ["t2m"], "data": [[1]], "x": 1}}, 400, r"unexpected keys \['x'\]"),
    ({"data": {"columns": [1], "data": [[1]]}}, 400, r"'columns' must be a list of names"),
    ({"data": {"columns": ["t2m"], "data": {}}}, 400, r"'data' must be a list of rows"),
    ({"data": {"columns": ["t2m"], "data": []}}, 422, r"no rows"),
    ({"data": [1, 2]}, 422, r"data, row 0: expected an object of column values, got int"),
    ({"data": {}}, 422, r"no rows"),
    ({"data": "null"}, 400, r"data: expected records .* got null"),
])
def test_shape_errors(body: object, status: int, message: str) -> None:
    with pytest.raises(PayloadError, match=message) as info:
        table_from_predict(body)
    assert info.value.status == status


def test_single_record_object_is_one_row() -> None:
    assert table_from_predict({"t2m": 1.0, "count": 2}) == {"t2m": [1.0], "count": [2]}


def test_instances_as_rows_follow_signature_order() -> None:
    table = table_from_invocations({"instances": [["2020-01-01", 1.0, 2, True, "X"]]}, SCHEMA)
    assert table["count"] == [2] and table["station"] == ["X"]


def test_decode_json_rejects_garbage() -> None:
    with pytest.raises(PayloadError, match="malformed JSON") as info:
        decode_json(b"{'single': 'quotes'}")
    assert info.value.status == 400


def test_tensor_signatures_are_refused() -> None:
    with pytest.raises(ServeError, match="tensor signature"):
        InputSchema.from_signature([{"type": "tensor"}])


@pytest.mark.parametrize(("value", "message"), [
    ("12", r"t2m, row 1: expected a number, got string '12'"),
    (None, r"t2m, row 1: missing value"),
    ([1.0], r"t2m, row 1: expected a number, got an array"),
    (2**70, r"t2m, row 1: .* is outside the physical range"),
])
def test_numpy_only_type_check_catches_what_the_full_check_does(value: object,
                                                                message: str) -> None:
    table = {"time": ["2020-01-01", "2020-01-01"], "t2m": [1.0, value], "count": [1, 2]}
    for bools_possible in (True, False):
        with pytest.raises(PayloadError, match=message):
            validate_table(table, SCHEMA, bools_possible=bools_possible)


def test_booleans_are_caught_when_the_body_had_them() -> None:
    table = {"time": ["2020-01-01"], "t2m": [True], "count": [1]}
    with pytest.raises(PayloadError, match="expected a number, got boolean true"):
        validate_table(table, SCHEMA, bools_possible=True)
