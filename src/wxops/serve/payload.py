"""Request bodies -> validated NumPy columns, or a :class:`PayloadError` naming the problem.

Pure functions (no I/O). Every way a body can be wrong maps to a 4xx that names the field
and what is wrong with it, so bad input never becomes a 500:

============================  ======  ==================================================
problem                       status  example message
============================  ======  ==================================================
empty body                    400     ``empty body: send a JSON object ...``
malformed JSON                400     ``malformed JSON: unexpected character ...``
JSON nested too deep          400     ``JSON nested deeper than 1024 levels``
malformed CSV (``text/csv``)  400     ``malformed CSV: ...``
unknown shape / wrapper key   400     ``expected one of dataframe_split, ...``
body over the limit           413     (raised by the app before parsing)
missing column                422     ``t2m: missing column (the model needs ...)``
extra column                  422     ``foo: unexpected column (the model takes ...)``
wrong type                    422     ``t2m, row 0: expected a number, got string 'x'``
missing value (null)          422     ``t2m, row 2: missing value``
NaN or infinity               422     ``t2m, row 0: NaN is not a finite number``
out of physical range         422     ``t2m, row 0: 95.0 degC is outside [-80, 60]``
time out of range or type     422     ``time, row 0: '99999-01-01' is outside [1900, 2200)``
no rows                       422     ``no rows to predict``
============================  ======  ==================================================

Physical ranges are those of :data:`wxops.data.qc.VARIABLES`, the same table the
training data went through.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from itertools import chain
from operator import iadd, itemgetter, le
from typing import Any

import numpy as np
import orjson

from wxops.data.qc import VARIABLES
from wxops.errors import PayloadError, ServeError

#: Keys of MLflow's scoring protocol, in the order MLflow documents them.
MLFLOW_KEYS: tuple[str, ...] = ("dataframe_split", "dataframe_records", "instances", "inputs")
_NUMERIC = frozenset({"double", "float", "long", "integer"})
_MISSING: Any = object()
#: Times outside these years are refused (a typo such as 99999-01-01 or a stray number).
TIME_MIN = np.datetime64("1900-01-01T00:00:00", "s")
TIME_MAX = np.datetime64("2200-01-01T00:00:00", "s")
#: orjson's own nesting limit; deeper bodies are refused with a 400.
MAX_JSON_DEPTH = 1024
#: Keys pandas' split orient may carry (``index`` is ignored).
SPLIT_KEYS = frozenset({"columns", "data", "index"})
#: Column types the fast path reads (others always take the precise path).
FAST_TYPES = frozenset({"double", "float", "datetime"})
#: Column orders remembered per schema; more (a client shuffling columns) are planned anew.
MAX_PLANS = 32
#: Up to this many rows the fast path checks ranges in Python, beyond it with NumPy.
SMALL = 4
#: Up to this many rows the fast path's range check compares with bounds tiled in advance.
TILED_ROWS = 512
TIME_MIN_S = int(TIME_MIN.astype(np.int64))
TIME_MAX_S = int(TIME_MAX.astype(np.int64))


@dataclass(frozen=True)
class Column:
    """One input column of the model signature, with its physical range if known."""

    name: str
    type: str
    required: bool = True
    low: float | None = None
    high: float | None = None
    units: str = ""


@dataclass(frozen=True)
class RowPlan:
    """How rows in one column order become arrays on the fast path, worked out once.

    ``times`` are (position, name) of the datetime columns, highest position first so
    that deleting each from the flattened rows leaves the others' positions valid;
    ``order`` takes the remaining (numeric) columns from row order to schema order.
    ``low``/``high`` are finite bounds per numeric column in row order: NaN and infinity
    fail them, as they fail the precise path.
    """

    width: int
    times: tuple[tuple[int, str], ...]
    numeric: tuple[str, ...]
    order: np.ndarray | None
    low: list[float]
    high: list[float]
    names: tuple[str, ...]
    low_rows: np.ndarray = field(init=False, repr=False, compare=False)
    high_rows: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Bounds tiled to (rows, columns): comparing equal shapes is twice as fast as
        # broadcasting a row of bounds over a short last axis.
        object.__setattr__(self, "low_rows", np.tile(self.low, (TILED_ROWS, 1)))
        object.__setattr__(self, "high_rows", np.tile(self.high, (TILED_ROWS, 1)))

    def in_range(self, rows: np.ndarray) -> bool:
        """Whether every value of (rows, columns) lies within its column's bounds."""
        n_rows = len(rows)
        low, high = ((self.low_rows[:n_rows], self.high_rows[:n_rows]) if n_rows <= TILED_ROWS
                     else (self.low_rows[0], self.high_rows[0]))
        return int(np.count_nonzero((rows >= low) & (rows <= high))) == rows.size


@dataclass(frozen=True)
class InputSchema:
    """The columns a model takes, in signature order."""

    columns: tuple[Column, ...]
    names: frozenset[str] = field(init=False)
    plans: dict[tuple[Any, ...], RowPlan] = field(
        init=False, default_factory=dict, repr=False, compare=False)
    column_bounds: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = field(
        init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", frozenset(c.name for c in self.columns))

    def bounds(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of these columns as (columns, 1) arrays, infinite where unbounded;
        built once per set of columns rather than twice per request."""
        try:
            return self.column_bounds[names]
        except KeyError:
            cols = [next(c for c in self.columns if c.name == name) for name in names]
            made = (np.array([-np.inf if c.low is None else c.low for c in cols])[:, None],
                    np.array([np.inf if c.high is None else c.high for c in cols])[:, None])
            if len(self.column_bounds) < MAX_PLANS:
                self.column_bounds[names] = made
            return made

    def plan(self, order: tuple[Any, ...]) -> RowPlan | None:
        """The fast-path plan for rows whose columns come in ``order``, or None where only
        the precise path will do. Plans are cached (a client sends the same order every
        time); refusals are not, so that bad requests cannot fill the cache."""
        try:
            return self.plans[order]
        except KeyError:
            made = _row_plan(self, order)
            if made is not None and len(self.plans) < MAX_PLANS:
                self.plans[order] = made
            return made

    @classmethod
    def from_signature(cls, inputs: Sequence[Mapping[str, Any]]) -> InputSchema:
        """Build from MLflow's signature dicts; ranges come from the QC variable table.

        Raises:
            ServeError: a signature without column names (a tensor signature), which
                this service cannot validate.
        """
        columns = []
        for spec in inputs:
            name = spec.get("name")
            if not name:
                raise ServeError("the model signature has unnamed inputs (a tensor signature); "
                                 "wxops serve needs a column-based model")
            var = VARIABLES.get(str(name))
            columns.append(Column(
                name=str(name), type=str(spec.get("type", "double")),
                required=bool(spec.get("required", True)),
                low=var.low if var else None, high=var.high if var else None,
                units=var.units if var else "",
            ))
        return cls(tuple(columns))

    def describe(self) -> str:
        return ", ".join(f"{c.name} ({c.type})" for c in self.columns)


@dataclass(frozen=True)
class Batch:
    """Validated input: one NumPy array per signature column, all ``n_rows`` long.

    Numeric columns are float64 (finite, in range), datetimes are naive-UTC
    ``datetime64[ns]``.
    """

    columns: dict[str, np.ndarray]
    n_rows: int


# --- decoding ----------------------------------------------------------------------------


def decode_json(body: bytes) -> Any:
    """Parse a request body; Python-style ``NaN``/``Infinity`` literals are accepted here
    so that validation can name the field holding them."""
    if not body or not body.strip():
        raise PayloadError("empty body: send a JSON object, e.g. {\"data\": df.to_json()}",
                           status=400)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as fast_exc:
        if "depth" in str(fast_exc) or "recursion" in str(fast_exc).lower():
            raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels; a request "
                               "needs at most 3", status=400) from None
        try:
            return json.loads(body)
        except RecursionError:
            raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels; a request "
                               "needs at most 3", status=400) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PayloadError(f"malformed JSON: {fast_exc}", status=400) from None


def table_from_csv(body: bytes) -> dict[str, list[Any]]:
    """Columns of a ``text/csv`` body (MLflow's scoring protocol): a header row of column
    names, then one row per prediction; an empty cell is a missing value."""
    import csv
    import io

    import pandas as pd

    if not body or not body.strip():
        raise PayloadError("empty body: send a header row of column names and data rows",
                           status=400)
    try:
        frame = pd.read_csv(io.BytesIO(body), keep_default_na=False, na_values=[""],
                            encoding="utf-8")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, csv.Error, OverflowError,
            IndexError, TypeError) as exc:
        raise PayloadError(f"malformed CSV: {exc}", status=400) from None
    dupes = [c for c in frame.columns if isinstance(c, str) and "." in c
             and c.rsplit(".", 1)[0] in frame.columns and c.rsplit(".", 1)[1].isdigit()]
    if dupes:
        raise PayloadError(f"{dupes[0].rsplit('.', 1)[0]}: column given twice", field=dupes[0])
    return {str(c): [None if (isinstance(v, float) and math.isnan(v)) else v
                     for v in frame[c].tolist()] for c in frame.columns}


# --- shapes ------------------------------------------------------------------------------


def table_from_predict(body: Any) -> dict[str, list[Any]]:
    """Columns of a ``/predict`` body.

    Accepted: ``{"data": "<DataFrame.to_json() string>"}`` (the classic client), ``{"data":
    <object>}``, a list of records, a mapping of columns (lists or pandas' ``{index: value}``
    dicts), or ``{"columns": [...], "data": [[...]]}`` (pandas' split orient).
    """
    if isinstance(body, dict) and "data" in body and "columns" not in body:
        extra = sorted(set(body) - {"data"})
        if extra:
            raise PayloadError(f"unexpected keys {extra} beside 'data'", status=400, field=extra[0])
        inner = body["data"]
        if isinstance(inner, str):
            inner = decode_json(inner.encode())
        return _table(inner, where="data")
    return _table(body, where="body")


def table_from_invocations(body: Any, schema: InputSchema) -> dict[str, list[Any]]:
    """Columns of an MLflow scoring-protocol body (``dataframe_split``, ``dataframe_records``,
    ``instances`` or ``inputs``, plus an optional empty ``params``)."""
    if not isinstance(body, dict):
        raise PayloadError(f"expected a JSON object with one of {list(MLFLOW_KEYS)}", status=400)
    keys = [k for k in MLFLOW_KEYS if k in body]
    unknown = sorted(set(body) - {*MLFLOW_KEYS, "params"})
    if unknown:
        raise PayloadError(f"unknown keys {unknown}; expected one of {list(MLFLOW_KEYS)}",
                           status=400, field=unknown[0])
    if len(keys) != 1:
        raise PayloadError(f"expected exactly one of {list(MLFLOW_KEYS)}, got {keys or 'none'}",
                           status=400)
    params = body.get("params")
    if params:
        raise PayloadError("this model takes no params; remove 'params'", field="params")
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "columns" not in value or "data" not in value:
            raise PayloadError("dataframe_split needs 'columns' and 'data' (pandas' split orient)",
                               status=400, field=key)
        return _table(value, where=key)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise PayloadError("dataframe_records must be a list of records", status=400,
                               field=key)
        return _table(value, where=key)
    # instances / inputs: records, columns, or positional rows in signature order
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        names = [c.name for c in schema.columns]
        return _split_table(names, value, where=key)
    return _table(value, where=key)


def _table(obj: Any, *, where: str) -> dict[str, list[Any]]:
    if isinstance(obj, list):
        return _records_table(obj, where=where)
    if not isinstance(obj, dict):
        raise PayloadError(
            f"{where}: expected records (a list of objects) or columns (an object), "
            f"got {_kind(obj)}", status=400, field=None if where == "body" else where)
    if "columns" in obj and "data" in obj and isinstance(obj["columns"], list):
        extra = sorted(set(obj) - {"columns", "data", "index"})
        if extra:
            raise PayloadError(f"{where}: unexpected keys {extra} in split orient", status=400,
                               field=extra[0])
        return _split_table(obj["columns"], obj["data"], where=where)
    if not obj:
        raise PayloadError("no rows to predict", field=None)
    first = next(iter(obj.values()))
    if isinstance(first, dict):
        return _index_table(obj, where=where)
    if isinstance(first, list):
        return _columns_table(obj)
    # a single record of scalars
    return {str(k): [v] for k, v in obj.items()}


def _records_table(records: list[Any], *, where: str) -> dict[str, list[Any]]:
    if not records:
        raise PayloadError("no rows to predict")
    keys: dict[str, None] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise PayloadError(f"{where}, row {i}: expected an object of column values, "
                               f"got {_kind(rec)}", status=422, field=where)
        keys.update(dict.fromkeys(rec))
    return {k: [r.get(k, _MISSING) for r in records] for k in keys}


def _split_table(columns: Any, data: Any, *, where: str) -> dict[str, list[Any]]:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise PayloadError(f"{where}: 'columns' must be a list of names", status=400, field=where)
    if not isinstance(data, list):
        raise PayloadError(f"{where}: 'data' must be a list of rows", status=400, field=where)
    if not data:
        raise PayloadError("no rows to predict")
    width = len(columns)
    if set(map(type, data)) != {list} or set(map(len, data)) != {width}:
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != width:
                got = f"{len(row)} values" if isinstance(row, list) else _kind(row)
                raise PayloadError(f"{where}, row {i}: expected {width} values (one per "
                                   f"column), got {got}", field=where)
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise PayloadError(f"{dupes[0]}: column given twice", field=dupes[0])
    return {name: list(values) for name, values in zip(columns, zip(*data, strict=True),
                                                        strict=True)}


def _index_table(obj: dict[str, Any], *, where: str) -> dict[str, list[Any]]:
    """pandas' default ``to_json()`` orient: ``{column: {index: value}}``."""
    first = next(iter(obj.values()))
    index = list(first)
    table: dict[str, list[Any]] = {}
    for name, cells in obj.items():
        if not isinstance(cells, dict):
            raise PayloadError(f"{name}: expected an object of {{index: value}} like the other "
                               f"columns, got {_kind(cells)}", field=name)
        if len(cells) != len(index):
            raise PayloadError(f"{name}: has {len(cells)} values, the first column "
                               f"{len(index)}", field=name)
        table[name] = [cells.get(i, _MISSING) for i in index]
    return table


def _columns_table(obj: dict[str, Any]) -> dict[str, list[Any]]:
    lengths = {}
    for name, values in obj.items():
        if not isinstance(values, list):
            raise PayloadError(f"{name}: expected a list of values like the other columns, "
                               f"got {_kind(values)}", field=name)
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        odd = next(n for n, k in lengths.items() if k != lengths[first])
        raise PayloadError(f"{odd}: has {lengths[odd]} values, '{first}' has {lengths[first]}",
                           field=odd)
    return obj


# --- fast path ---------------------------------------------------------------------------


def batch_from_invocations(body: Any, schema: InputSchema) -> Batch | None:
    """The batch of a plain ``dataframe_split`` or ``dataframe_records`` body, read straight
    from the rows into arrays; None for anything else.

    What the service mostly receives (every column once, numbers finite and in range, ISO
    times in [1900, 2200)) costs a few C-level passes here instead of the per-column
    lists and checks of :func:`table_from_invocations` + :func:`validate_table`, with
    the same arrays. Anything unusual gives None and the caller takes that precise path,
    which names the problem. The caller must have seen no ``true``/``false`` in the body:
    a JSON boolean would be read as a number here.
    """
    if type(body) is not dict or len(body) != 1:
        return None
    if "dataframe_split" in body:
        return _split_batch(body["dataframe_split"], schema)
    if "dataframe_records" in body:
        return _records_batch(body["dataframe_records"], schema)
    return None


def batch_from_predict(body: Any, schema: InputSchema) -> Batch | None:
    """:func:`batch_from_invocations` for ``/predict``: records (a list) and pandas' split
    orient (``{"columns": ..., "data": ...}``), either also under ``"data"``."""
    if type(body) is dict and len(body) == 1 and "data" in body:
        body = body["data"]
    if type(body) is list:
        return _records_batch(body, schema)
    if type(body) is dict and "columns" in body:
        return _split_batch(body, schema)
    return None


def _split_batch(split: Any, schema: InputSchema) -> Batch | None:
    if type(split) is not dict or not split.keys() <= SPLIT_KEYS:
        return None
    columns, data = split.get("columns"), split.get("data")
    if type(columns) is not list or type(data) is not list or not data:
        return None
    try:
        plan = schema.plan(tuple(columns))
    except TypeError:  # an unhashable column "name"
        return None
    try:
        # Rows that are not lists need no check of their own: a string or object of the
        # right length puts strings where numbers belong, which the float block refuses.
        if plan is None or set(map(len, data)) != {plan.width}:
            return None
    except TypeError:  # a row that is a number, boolean or null
        return None
    return _rows_batch(plan, reduce(iadd, data, []), len(data))


def _records_batch(records: Any, schema: InputSchema) -> Batch | None:
    """Records holding exactly the schema's names (as many keys, all found) become rows."""
    order = tuple(c.name for c in schema.columns)
    plan = schema.plan(order)
    if plan is None or len(order) < 2 or type(records) is not list or not records:
        return None
    try:
        if set(map(len, records)) != {plan.width}:
            return None
        rows = list(map(itemgetter(*order), records))  # a list or string record: TypeError
    except (KeyError, TypeError):
        return None
    return _rows_batch(plan, list(chain.from_iterable(rows)), len(records))


def _row_plan(schema: InputSchema, order: tuple[Any, ...]) -> RowPlan | None:
    if len(order) != len(schema.columns) or set(order) != schema.names:
        return None  # missing, extra or repeated columns: the precise path names them
    types = {c.name: c.type for c in schema.columns}
    if not all(types[name] in FAST_TYPES for name in order):
        return None
    in_rows = [name for name in order if types[name] != "datetime"]
    numeric = [c for c in schema.columns if c.type != "datetime"]
    if not numeric:
        return None
    by_row = [next(c for c in numeric if c.name == name) for name in in_rows]
    order_ix = [in_rows.index(c.name) for c in numeric]
    top = float(np.finfo(np.float64).max)
    return RowPlan(
        width=len(order),
        times=tuple(sorted(((i, n) for i, n in enumerate(order) if types[n] == "datetime"),
                           reverse=True)),
        numeric=tuple(c.name for c in numeric),
        order=None if order_ix == sorted(order_ix) else np.array(order_ix),
        low=[-top if c.low is None else max(float(c.low), -top) for c in by_row],
        high=[top if c.high is None else min(float(c.high), top) for c in by_row],
        names=(*(c.name for c in numeric),
               *(c.name for c in schema.columns if c.type == "datetime")),
    )


def _rows_batch(plan: RowPlan, flat: list[Any], n_rows: int) -> Batch | None:
    """``flat``: the rows' values one after the other (consumed)."""
    width = plan.width
    times: dict[str, np.ndarray] = {}
    for pos, name in plan.times:
        stamps = _iso_times(flat[pos::width])
        if stamps is None:
            return None
        times[name] = stamps
        del flat[pos::width]
        width -= 1
    block = _float_block(plan, flat, n_rows, width)
    if block is None:
        return None
    columns = dict(zip(plan.numeric, block, strict=True))
    columns.update(times)
    return Batch({name: columns[name] for name in plan.names}, n_rows)


def _float_block(plan: RowPlan, flat: list[Any], n_rows: int, width: int) -> np.ndarray | None:
    """(columns, rows) float64 in schema order, or None if a value is not an int or float
    (``struct`` refuses strings, nulls, arrays and objects), too large, not finite or out
    of range."""
    try:
        rows = np.frombuffer(struct.pack(f"{len(flat)}d", *flat)).reshape(n_rows, width)
    except (struct.error, OverflowError):
        return None
    if n_rows <= SMALL:  # a few values: Python compares them faster than NumPy starts
        # exact int/float comparison: within the bounds means within them as float64 too
        ok = (all(map(le, plan.low * n_rows, flat)) and all(map(le, flat, plan.high * n_rows)))
    else:
        ok = plan.in_range(rows)
    if not ok:
        return None
    return rows.T.copy() if plan.order is None else rows[:, plan.order].T.copy()


def _iso_times(values: list[Any]) -> np.ndarray | None:
    """ISO strings -> datetime64[ns], parsed once; None unless all are strings of one
    length, with a four-character year ('-' at index 4), no fractional seconds (no '.'),
    that name times in [1900, 2200).

    The precise path parses at seconds (range check) and again at nanoseconds (the
    result). With at most four year digits neither parse overflows (NumPy wraps a
    twelve-digit year silently), and without a fraction the cast of the first equals
    the second.
    """
    try:
        joined = "".join(values)  # TypeError unless all are strings
        width = len(values[0])
        if (width < 5 or set(map(len, values)) != {width} or "." in joined
                or joined[4::width] != "-" * len(values)):
            return None
        seconds = np.array(values, dtype="datetime64[s]")
    except (TypeError, ValueError, OverflowError):
        return None
    ticks = seconds.view(np.int64)  # NaT is the smallest int64: below the range
    if len(values) <= SMALL:
        listed = ticks.tolist()
        low, high = min(listed), max(listed)
    else:
        low, high = int(np.minimum.reduce(ticks)), int(np.maximum.reduce(ticks))
    if not (low >= TIME_MIN_S and high < TIME_MAX_S):
        return None
    return seconds.astype("datetime64[ns]")


# --- validation --------------------------------------------------------------------------


def validate_table(table: dict[str, list[Any]], schema: InputSchema, *,
                   bools_possible: bool = True) -> Batch:
    """Check names, types, missing and non-finite values and physical ranges.

    ``bools_possible=False`` is a promise that no value is a JSON ``true``/``false``
    (the caller saw neither word in the body); numeric columns are then type-checked by
    NumPy alone, which is several times faster than looking at every value.
    """
    extra = [k for k in table if k not in schema.names]
    if extra:
        raise PayloadError(f"{extra[0]}: unexpected column (the model takes: "
                           f"{schema.describe()})", field=extra[0])
    missing = [c.name for c in schema.columns if c.required and c.name not in table]
    if missing:
        raise PayloadError(f"{missing[0]}: missing column (the model needs: "
                           f"{schema.describe()})", field=missing[0])
    first = next(iter(table)) if table else ""
    n_rows = len(table[first]) if table else 0
    for name, cells in table.items():
        if len(cells) != n_rows:
            raise PayloadError(f"{name}: has {len(cells)} values, {first} has {n_rows}",
                               field=name)
    if n_rows == 0:
        raise PayloadError("no rows to predict")
    columns = _numeric_block(table, schema, n_rows, bools_possible)
    for col in schema.columns:
        values = table.get(col.name)
        if values is None or col.name in columns:
            continue
        if col.type in _NUMERIC:
            columns[col.name] = _numeric(col, values)
        elif col.type == "datetime":
            columns[col.name] = _datetime(col, values)
        elif col.type == "boolean":
            columns[col.name] = _typed(col, values, (bool,), "true or false", np.bool_)
        elif col.type == "string":
            columns[col.name] = _typed(col, values, (str,), "a string", np.object_)
        else:
            raise PayloadError(f"{col.name}: the model's input type '{col.type}' is not "
                               "served over JSON", field=col.name)
    return Batch(columns, n_rows)


def _numeric_block(table: dict[str, list[Any]], schema: InputSchema, n_rows: int,
                   bools_possible: bool) -> dict[str, np.ndarray]:
    """All plain float columns checked at once (the common case, a few array operations);
    empty when anything needs a closer look, which :func:`_numeric` then gives per column
    with a precise message."""
    cols = [c for c in schema.columns if c.type in ("double", "float") and c.name in table]
    if not cols:
        return {}
    lists = [table[c.name] for c in cols]
    if bools_possible:
        if not {v.__class__ for values in lists for v in values} <= {int, float}:
            return {}
        try:
            block = np.array(lists, dtype=np.float64).reshape(len(cols), n_rows)
        except OverflowError:
            return {}
    else:
        # Strings, nulls, nested lists and huge ints all give a non-numeric dtype.
        try:
            raw = np.array(lists)
        except (ValueError, OverflowError):
            return {}
        if raw.dtype.kind not in "fi" or raw.shape != (len(cols), n_rows):
            return {}
        block = raw.astype(np.float64, copy=False)
    low, high = schema.bounds(tuple(c.name for c in cols))
    if not (np.isfinite(block).all() and (block >= low).all() and (block <= high).all()):
        return {}
    return {c.name: block[i] for i, c in enumerate(cols)}


def _numeric(col: Column, values: list[Any]) -> np.ndarray:
    kinds = {v.__class__ for v in values}
    if not kinds <= {int, float}:
        for i, v in enumerate(values):
            if v is None or v is _MISSING:
                raise PayloadError(f"{col.name}, row {i}: missing value", field=col.name)
            if v.__class__ not in (int, float):
                raise PayloadError(f"{col.name}, row {i}: expected a number, got {_kind(v)}",
                                   field=col.name)
    try:
        arr = np.array(values, dtype=np.float64)
    except OverflowError:
        raise PayloadError(f"{col.name}: a value is too large for a float64",
                           field=col.name) from None
    finite = np.isfinite(arr)
    if not finite.all():
        i = int(np.argmin(finite))
        raise PayloadError(f"{col.name}, row {i}: {values[i]!r} is not a finite number",
                           field=col.name)
    if col.type in ("long", "integer"):
        fractional = arr != np.round(arr)
        if fractional.any():
            i = int(np.argmax(fractional))
            raise PayloadError(f"{col.name}, row {i}: expected an integer, got {values[i]!r}",
                               field=col.name)
    if col.low is not None and col.high is not None:
        bad = (arr < col.low) | (arr > col.high)
        if bad.any():
            i = int(np.argmax(bad))
            raise PayloadError(
                f"{col.name}, row {i}: {values[i]!r} {col.units} is outside the physical "
                f"range [{col.low:g}, {col.high:g}] {col.units}".replace("  ", " "),
                field=col.name)
    return arr


def _datetime(col: Column, values: list[Any]) -> np.ndarray:
    """ISO 8601 strings, or epoch milliseconds as pandas' ``to_json()`` writes them (whole
    seconds); either within [1900, 2200)."""
    kinds = {v.__class__ for v in values}
    if kinds == {str}:
        parsed_once = _iso_times(values)  # the usual times: the same array, one parse
        if parsed_once is not None:
            return parsed_once
        try:
            seconds = np.array(values, dtype="datetime64[s]")
        except ValueError:
            arr = _datetime_slow(col, values)
        else:
            _time_range(col, values, seconds)  # in range: no overflow in nanoseconds
            arr = np.array(values, dtype="datetime64[ns]")
    elif kinds <= {int, float}:
        # pandas' to_json() writes datetimes as epoch milliseconds
        ms = np.array(values, dtype=np.float64)
        bad = ~np.isfinite(ms) | (np.mod(ms, 1000.0) != 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise PayloadError(f"{col.name}, row {i}: {values[i]!r} is not a time; send ISO "
                               "8601 text (2024-01-01T06:00:00Z) or pandas' epoch milliseconds",
                               field=col.name)
        seconds = (ms // 1000).astype("int64").astype("datetime64[s]")
        _time_range(col, values, seconds)
        arr = seconds.astype("datetime64[ns]")
    else:
        for i, v in enumerate(values):
            if v is None or v is _MISSING:
                raise PayloadError(f"{col.name}, row {i}: missing value", field=col.name)
            if v.__class__ not in (str, int, float):
                raise PayloadError(f"{col.name}, row {i}: expected an ISO 8601 time or epoch "
                                   f"milliseconds, got {_kind(v)}", field=col.name)
        raise PayloadError(f"{col.name}: mixes ISO 8601 strings and epoch numbers; use one",
                           field=col.name)
    if np.isnat(arr).any():
        i = int(np.argmax(np.isnat(arr)))
        raise PayloadError(f"{col.name}, row {i}: missing value", field=col.name)
    return arr


def _datetime_slow(col: Column, values: list[str]) -> np.ndarray:
    """Times with a UTC offset (``...+02:00``, ``...Z``): converted to naive UTC."""
    import pandas as pd

    out = np.empty(len(values), dtype="datetime64[ns]")
    for i, v in enumerate(values):
        try:
            ts = pd.Timestamp(v)
        except (ValueError, OverflowError, TypeError):
            raise PayloadError(f"{col.name}, row {i}: cannot read {v!r} as an ISO 8601 time "
                               f"within [{TIME_MIN}, {TIME_MAX})", field=col.name) from None
        if ts is pd.NaT:
            raise PayloadError(f"{col.name}, row {i}: missing value", field=col.name)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        stamp = np.datetime64(ts.as_unit("ns").to_datetime64())
        _time_range(col, [v], np.array([stamp]).astype("datetime64[s]"), offset=i)
        out[i] = stamp
    return out


def _time_range(col: Column, values: list[Any], seconds: np.ndarray, offset: int = 0) -> None:
    bad = ~np.isnat(seconds) & ((seconds < TIME_MIN) | (seconds >= TIME_MAX))
    if bad.any():
        i = int(np.argmax(bad))
        raise PayloadError(f"{col.name}, row {i + offset}: {values[i]!r} is outside the years "
                           f"[{str(TIME_MIN)[:4]}, {str(TIME_MAX)[:4]})", field=col.name)


def _typed(col: Column, values: list[Any], types: tuple[type, ...], what: str,
           dtype: Any) -> np.ndarray:
    for i, v in enumerate(values):
        if v is None or v is _MISSING:
            raise PayloadError(f"{col.name}, row {i}: missing value", field=col.name)
        if v.__class__ not in types:
            raise PayloadError(f"{col.name}, row {i}: expected {what}, got {_kind(v)}",
                               field=col.name)
    return np.array(values, dtype=dtype)


def _kind(value: Any) -> str:
    if value is None or value is _MISSING:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def split_keys(table: dict[str, list[Any]], schema: InputSchema,
               keys: Sequence[str]) -> tuple[dict[str, list[Any]], dict[str, np.ndarray]]:
    """Take the key columns of an NWP (MOS) request out of ``table`` and check them.

    A MOS forecast is identified by ``station``, ``init_time`` and ``lead_time``: the
    keys that are not model inputs are removed from the table (``station`` as strings,
    ``*_time`` as naive-UTC times); those that are inputs stay and are validated with
    the others. Returns (the input table, key name -> array).

    Raises:
        PayloadError: a key column missing or unreadable (422).
    """
    rest = dict(table)
    out: dict[str, np.ndarray] = {}
    for key in keys:
        if key not in table:
            raise PayloadError(f"{key}: missing key column (this model forecasts per "
                               f"{', '.join(keys)})", field=key)
        if key in schema.names:
            continue
        values = rest.pop(key)
        if key.endswith("_time"):
            out[key] = _datetime(Column(key, "datetime"), values)
        else:
            for i, v in enumerate(values):
                if v is None or v is _MISSING or not isinstance(v, str | int):
                    raise PayloadError(f"{key}, row {i}: expected a station id, got {_kind(v)}",
                                       field=key)
            out[key] = np.asarray([str(v) for v in values], dtype=object)
    return rest, out
