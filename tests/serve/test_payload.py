"""Request shapes and validation, as pure functions (no server)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import numpy as np
import pytest

from wxops.errors import PayloadError, ServeError
from wxops.serve.payload import (
    MAX_PLANS,
    Batch,
    InputSchema,
    batch_from_invocations,
    batch_from_predict,
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


# --- the fast path (batch_from_invocations) against the precise one -----------------------

BENCH_NAMES = ["time", "t2m", "td2m", "rh", "pressure", "wind_speed", "wind_dir", "total_cloud",
               "opaque_cloud"]
BENCH_SCHEMA = InputSchema.from_signature(
    [{"name": "time", "type": "datetime"}]
    + [{"name": n, "type": "double"} for n in BENCH_NAMES[1:]])


def _rows(n: int = 100) -> list[list[object]]:
    """Rows like the benchmark's: ISO times, then floats within the physical ranges."""
    return [[f"1988-01-{1 + i // 24:02d}T{i % 24:02d}:00:00", 10.0 + i % 20 + 0.1,
             6.1 + 0.5 * (i % 8), 77.0 + i % 20, 993.25, 6.2 - 0.01 * i, float(10 * i % 360),
             float(i % 11), float(i % 6)] for i in range(n)]


def _split(rows: list[list[object]], columns: list[str] | None = None) -> bytes:
    split = {"index": list(range(len(rows))), "columns": columns or BENCH_NAMES, "data": rows}
    return json.dumps({"dataframe_split": split}).encode()


def _precise(body: bytes, schema: InputSchema = BENCH_SCHEMA) -> Batch:
    parsed = decode_json(body)
    return validate_table(table_from_invocations(parsed, schema), schema,
                          bools_possible=b"true" in body or b"false" in body)


def _served(body: bytes, schema: InputSchema = BENCH_SCHEMA) -> Batch:
    """What the service's decode() does with a JSON /invocations body."""
    parsed = decode_json(body)
    if not (b"true" in body or b"false" in body):
        fast = batch_from_invocations(parsed, schema)
        if fast is not None:
            return fast
    return _precise(body, schema)


def _outcome(read: Callable[[bytes], Batch], body: bytes) -> tuple[object, ...]:
    try:
        batch = read(body)
    except PayloadError as exc:
        return ("error", exc.status, exc.field, str(exc))
    return ("batch", batch.n_rows, tuple(
        (name, arr.dtype.str, arr.shape, arr.flags.c_contiguous, arr.tobytes())
        for name, arr in batch.columns.items()))


def test_fast_path_gives_the_precise_arrays_on_the_benchmark_body() -> None:
    for n in (1, 3, 100):
        body = _split(_rows(n))
        assert batch_from_invocations(decode_json(body), BENCH_SCHEMA) is not None
        assert _outcome(_served, body) == _outcome(_precise, body)
        assert _outcome(_served, body)[0] == "batch"


def _mutated(row: int, col: int, value: object) -> list[list[object]]:
    rows = _rows()
    rows[row][col] = value
    return rows


def _ragged_pair() -> list[list[object]]:
    """Row 3 one value short, row 4 one long: flattened, the values line up again."""
    rows = _rows()
    rows[4] = [rows[4][1], *rows[4]]
    del rows[3][-1]
    return rows


def _raw(rows: list[list[object]], literal: str) -> bytes:
    return _split(rows).replace(b'"__LITERAL__"', literal.encode())


FAST_CASES: list[tuple[str, bytes, bool]] = [  # (id, body, whether the fast path reads it)
    ("floats", _split(_rows()), True),
    ("ints in a double column", _split(_mutated(7, 4, 1000)), True),
    ("int column", _split([[r[0], 12, *r[2:]] for r in _rows()]), True),
    ("other column order", _split([[*r[1:], r[0]] for r in _rows()],
                                  [*BENCH_NAMES[1:], "time"]), True),
    ("bool", _split(_mutated(57, 3, True)), False),
    ("false in a cloud column", _split(_mutated(57, 7, False)), False),
    ("null", _split(_mutated(42, 2, None)), False),
    ("string number", _split(_mutated(42, 2, "12")), False),
    ("array", _split(_mutated(99, 5, [1000.0])), False),
    ("object", _split(_mutated(99, 5, {"v": 1000.0})), False),
    ("NaN literal", _raw(_mutated(42, 1, "__LITERAL__"), "NaN"), False),
    ("-Infinity literal", _raw(_mutated(42, 1, "__LITERAL__"), "-Infinity"), False),
    ("above range", _split(_mutated(60, 1, 95.0)), False),
    ("below range", _split(_mutated(60, 5, -0.5)), False),
    ("huge int", _split(_mutated(60, 4, 2**70)), False),
    ("int beyond float64", _split(_mutated(60, 4, 10**400)), False),
    ("ragged row", _split([*_rows()[:10], _rows()[10][:8], *_rows()[11:]]), False),
    ("ragged pair lining up", _split(_ragged_pair()), False),
    ("row as object", _split([*_rows()[:5], dict(zip(BENCH_NAMES, _rows()[5], strict=True)),
                              *_rows()[6:]]), False),
    ("row as string", _split([*_rows()[:5], "x" * 9, *_rows()[6:]]), False),
    ("row as number", _split([*_rows()[:5], 7, *_rows()[6:]]), False),
    ("missing column", _split([r[:8] for r in _rows()], BENCH_NAMES[:8]), False),
    ("extra column", _split([[*r, 1.0] for r in _rows()], [*BENCH_NAMES, "snow"]), False),
    ("duplicate column", _split([[*r[:8], r[7]] for r in _rows()],
                                [*BENCH_NAMES[:8], "total_cloud"]), False),
    ("time out of range", _split(_mutated(30, 0, "2300-01-01T00:00:00")), False),
    ("time before 1900", _split(_mutated(30, 0, "1899-12-31T23:00:00")), False),
    ("time unreadable", _split(_mutated(30, 0, "yesterday")), False),
    ("time empty", _split(_mutated(30, 0, "")), False),
    ("time null", _split(_mutated(30, 0, None)), False),
    ("time as epoch ms", _split([[568015200000 + 3600000 * i, *r[1:]]
                                 for i, r in enumerate(_rows())]), False),
    ("time with fraction", _split(_mutated(30, 0, "1988-01-02T06:00:00.5")), False),
    ("time with a long year", _split(_mutated(30, 0, "9999999999999999999-01-01")), False),
    ("time as a date", _split(_mutated(30, 0, "1988-01-02")), False),
    ("times as dates", _split([[f"1988-01-{1 + i % 28:02d}", *r[1:]]
                               for i, r in enumerate(_rows())]), True),
    ("time with offset", _split(_mutated(30, 0, "1988-01-02T07:00:00+01:00")), False),
    ("times with offsets", _split([[f"{r[0]}+01:00", *r[1:]] for r in _rows()]), True),
    ("params", json.dumps({"dataframe_split": {"columns": BENCH_NAMES, "data": _rows()},
                           "params": {"k": 1}}).encode(), False),
    ("unknown split key", json.dumps({"dataframe_split": {"columns": BENCH_NAMES, "data": _rows(),
                                                          "dtypes": {}}}).encode(), False),
    ("no rows", _split([]), False),
    ("records", json.dumps({"dataframe_records": [dict(zip(BENCH_NAMES, r, strict=True))
                                                  for r in _rows()]}).encode(), True),
    ("records, one missing key", json.dumps({"dataframe_records": [
        dict(zip(BENCH_NAMES[:-1] if i == 5 else BENCH_NAMES, r, strict=False))
        for i, r in enumerate(_rows())]}).encode(), False),
    ("records, a list among them", json.dumps({"dataframe_records": [
        *[dict(zip(BENCH_NAMES, r, strict=True)) for r in _rows(3)], _rows(1)[0]]}).encode(),
     False),
]


@pytest.mark.parametrize(("body", "fast"), [c[1:] for c in FAST_CASES],
                         ids=[c[0] for c in FAST_CASES])
def test_fast_path_reads_only_what_it_reads_identically(body: bytes, fast: bool) -> None:
    """Each decision of the fast path: it takes the body (then the arrays are the precise
    path's, bit for bit) or leaves it to the precise path (then status, field and message
    are the precise path's)."""
    taken = (not (b"true" in body or b"false" in body)
             and batch_from_invocations(decode_json(body), BENCH_SCHEMA) is not None)
    assert taken == fast
    assert _outcome(_served, body) == _outcome(_precise, body)


def test_fast_path_errors_name_the_field_and_row() -> None:
    with pytest.raises(PayloadError, match=r"rh, row 57: expected a number, got boolean true"):
        _served(_split(_mutated(57, 3, True)))
    with pytest.raises(PayloadError, match=r"time, row 30: '2300-01-01T00:00:00' is outside"):
        _served(_split(_mutated(30, 0, "2300-01-01T00:00:00")))
    with pytest.raises(PayloadError, match=r"dataframe_split, row 3: expected 9 values"):
        _served(_split(_ragged_pair()))


def test_fast_path_plans_are_cached_and_bounded() -> None:
    schema = InputSchema.from_signature([{"name": n, "type": "double"} for n in "abcde"])
    assert schema.plan(tuple("abcde")) is schema.plan(tuple("abcde"))
    for i in range(MAX_PLANS + 5):
        assert schema.plan(("a", "b", f"x{i}")) is None  # refused, not cached
    assert len(schema.plans) == 1
    for order in itertools.islice(itertools.permutations("abcde"), MAX_PLANS + 5):
        assert schema.plan(order) is not None
    assert len(schema.plans) == MAX_PLANS
    assert schema == InputSchema.from_signature([{"name": n, "type": "double"} for n in "abcde"])


def _precise_predict(body: bytes) -> Batch:
    return validate_table(table_from_predict(decode_json(body)), BENCH_SCHEMA,
                          bools_possible=b"true" in body or b"false" in body)


def _served_predict(body: bytes) -> Batch:
    """What the service's decode() does with a JSON /predict body."""
    if not (b"true" in body or b"false" in body):
        fast = batch_from_predict(decode_json(body), BENCH_SCHEMA)
        if fast is not None:
            return fast
    return _precise_predict(body)


def _records(rows: list[list[object]]) -> list[dict[str, object]]:
    return [dict(zip(BENCH_NAMES, r, strict=True)) for r in rows]


PREDICT_CASES: list[tuple[str, object, bool]] = [  # (id, body, whether the fast path reads it)
    ("records", _records(_rows()), True),
    ("records under data", {"data": _records(_rows())}, True),
    ("split orient", {"columns": BENCH_NAMES, "data": _rows(), "index": list(range(100))}, True),
    ("split orient under data", {"data": {"columns": BENCH_NAMES, "data": _rows(3)}}, True),
    ("records with a null", _records(_mutated(8, 6, None)), False),
    ("records with a bool", _records(_mutated(8, 6, True)), False),
    ("records with an extra key", [*_records(_rows(3)), {**_records(_rows(1))[0], "x": 1}],
     False),
    ("split with a string", {"columns": BENCH_NAMES, "data": _mutated(8, 6, "n")}, False),
    ("data beside another key", {"data": _records(_rows()), "mode": "fast"}, False),
    ("columns orient", {n: [r[i] for r in _rows()] for i, n in enumerate(BENCH_NAMES)}, False),
    ("empty records", [], False),
]


@pytest.mark.parametrize(("payload", "fast"), [c[1:] for c in PREDICT_CASES],
                         ids=[c[0] for c in PREDICT_CASES])
def test_predict_fast_path_reads_only_what_it_reads_identically(payload: object,
                                                                fast: bool) -> None:
    body = json.dumps(payload).encode()
    taken = (not (b"true" in body or b"false" in body)
             and batch_from_predict(decode_json(body), BENCH_SCHEMA) is not None)
    assert taken == fast
    assert _outcome(_served_predict, body) == _outcome(_precise_predict, body)


def test_precise_path_parses_usual_times_once_with_the_same_result() -> None:
    times = ["1988-01-01T06:00:00", "2199-12-31T23:59:59", "1900-01-01T00:00:00"]
    batch = validate_table({"time": times, "t2m": [1.0] * 3, "count": [1] * 3}, SCHEMA)
    np.testing.assert_array_equal(batch.columns["time"], np.array(times, dtype="datetime64[ns]"))
    with pytest.raises(PayloadError, match=r"time, row 1: '2200-01-01T00:00:00' is outside"):
        validate_table({"time": [times[0], "2200-01-01T00:00:00"], "t2m": [1.0] * 2,
                        "count": [1] * 2}, SCHEMA)
