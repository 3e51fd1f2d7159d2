"""The service's OpenAPI contract, described from the served model's signature.

Request bodies of ``/predict`` and ``/invocations`` list the model's columns with their
types and physical ranges (the same table the validation uses), their answers the model's
outputs (a number per row, or the named probabilities per threshold of a probability
model), every status code a route
can answer is documented with its content type, and ``text/plain`` routes say so. The
document is rebuilt when another model version (another signature) is served.
"""

from __future__ import annotations

from typing import Any

from wxops.serve.payload import TIME_MAX, TIME_MIN, Column, InputSchema

JSON = "application/json"
CSV = "text/csv"
TEXT = "text/plain"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "status"],
    "properties": {
        "error": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "status": {"type": "integer"},
    },
}

_STATUS_TEXT = {
    "400": "Empty body, malformed JSON/CSV, JSON nested too deep, or an unknown shape",
    "401": "Missing or invalid bearer token",
    "403": "The token lacks the scope this route needs",
    "413": "Body over the configured limit",
    "422": "Missing/extra column, wrong type, NaN/inf, out of range (values or time)",
    "502": "The reload failed; the previous version keeps serving",
    "503": "No model loaded yet (or it failed to load: the message says why)",
}

#: Status codes per route (besides 200), as the handlers answer them.
ROUTE_STATUSES: dict[tuple[str, str], tuple[str, ...]] = {
    ("/predict", "post"): ("400", "401", "403", "413", "422", "503"),
    ("/invocations", "post"): ("400", "401", "403", "413", "422", "503"),
    ("/model", "get"): ("401", "403", "503"),
    ("/ready", "get"): ("503",),
    ("/admin/reload", "post"): ("401", "403", "502"),
}


def _column_schema(col: Column) -> dict[str, Any]:
    if col.type == "datetime":
        return {"type": "string", "format": "date-time",
                "description": f"ISO 8601 time (UTC if no offset) within "
                               f"[{str(TIME_MIN)[:10]}, {str(TIME_MAX)[:10]})"}
    if col.type in ("double", "float", "long", "integer"):
        out: dict[str, Any] = {"type": "integer" if col.type in ("long", "integer") else "number"}
        if col.low is not None and col.high is not None:
            out.update({"minimum": col.low, "maximum": col.high})
        if col.units:
            out["description"] = f"{col.name} in {col.units}"
        return out
    if col.type == "boolean":
        return {"type": "boolean"}
    return {"type": "string"}


def request_schemas(schema: InputSchema | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``/predict`` body, ``/invocations`` body) JSON schemas for the served model."""
    if schema is None:  # no model yet: any object, the handlers answer 503
        anything: dict[str, Any] = {"type": "object"}
        return anything, anything
    props = {c.name: _column_schema(c) for c in schema.columns}
    required = [c.name for c in schema.columns if c.required]
    record = {"type": "object", "properties": props, "required": required,
              "additionalProperties": False}
    records = {"type": "array", "items": record, "minItems": 1}
    columns = {"type": "object", "required": required, "additionalProperties": False,
               "properties": {n: {"type": "array", "items": p, "minItems": 1}
                              for n, p in props.items()},
               "description": "columns: equal-length lists of values"}
    split = {"type": "object", "required": ["columns", "data"],
             "properties": {"columns": {"type": "array", "items": {"type": "string",
                                                                     "enum": list(props)}},
                            "data": {"type": "array", "minItems": 1,
                                     "items": {"type": "array"}}},
             "description": "pandas' split orient"}
    classic = {"type": "object", "required": ["data"], "additionalProperties": False,
               "properties": {"data": {"type": "string",
                                       "description": "pandas DataFrame.to_json() of the "
                                                      "input columns"}}}
    predict = {"oneOf": [classic, records, columns, split]}
    invocations = {"oneOf": [
        {"type": "object", "required": [key], "additionalProperties": False,
         "properties": {key: value}}
        for key, value in (("dataframe_split", split), ("dataframe_records", records),
                           ("instances", records), ("inputs", records))
    ]}
    return predict, invocations


def response_schemas(outputs: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``/predict`` answer, ``/invocations`` answer) JSON schemas for the served model's
    outputs (:meth:`wxops.serve.model.LoadedModel.describe_outputs`): one number per row,
    or one object per row with a member per named output (probabilities in [0, 1])."""
    row: dict[str, Any] = {"type": "number"}
    if outputs and outputs.get("columns"):
        probability = outputs.get("kind") == "probability"
        members: dict[str, Any] = {}
        for i, name in enumerate(outputs["columns"]):
            member: dict[str, Any] = {"type": "number"}
            if probability:
                member.update({"minimum": 0, "maximum": 1, "description": (
                    f"probability of the target {outputs['event']} "
                    f"{outputs['thresholds'][i]:g}")})
            members[name] = member
        row = {"type": "object", "required": list(members), "properties": members,
               "additionalProperties": False}
        if probability:
            row["description"] = ("probabilities per threshold, non-decreasing with the "
                                  "threshold for events below it (non-increasing above)")
    rows = {"type": "array", "items": row}
    predict = {"type": "object", "required": ["model_name", "model_version", "model_run_id",
                                              "result"],
               "properties": {"model_name": {"type": "string"},
                              "model_version": {"type": "string"},
                              "model_run_id": {"type": "string"},
                              "result": {**rows, "description": "one entry per input row"},
                              "keys": {"type": "object", "description": "NWP models: the "
                                       "key columns of each row and its valid time"}}}
    invocations = {"type": "object", "required": ["predictions"],
                   "properties": {"predictions": rows},
                   "description": "MLflow's scoring protocol: a data frame output comes as "
                                  "its records"}
    return predict, invocations


def patch_document(doc: dict[str, Any], schema: InputSchema | None,
                   outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``doc`` (FastAPI's generated document) with the model's request bodies and answers
    and every status code and content type the routes answer."""
    predict, invocations = request_schemas(schema)
    answers = dict(zip(("/predict", "/invocations"), response_schemas(outputs), strict=True))
    paths = doc.get("paths", {})
    for path, body in (("/predict", predict), ("/invocations", invocations)):
        op = paths.get(path, {}).get("post")
        if op is None:
            continue
        content = op.setdefault("requestBody", {"required": True}).setdefault("content", {})
        json_part = content.setdefault(JSON, {})
        json_part["schema"] = body
        content[CSV] = {"schema": {"type": "string", "description": "a header row of column "
                                   "names, then one row per prediction"}}
        ok = op.setdefault("responses", {}).setdefault("200", {"description": "Predictions"})
        ok.setdefault("content", {}).setdefault(JSON, {})["schema"] = answers[path]
    for (path, method), statuses in ROUTE_STATUSES.items():
        op = paths.get(path, {}).get(method)
        if op is None:
            continue
        responses = op.setdefault("responses", {})
        for code in statuses:
            responses[code] = {"description": _STATUS_TEXT[code],
                               "content": {JSON: {"schema": ERROR_SCHEMA}}}
    for path in ("/metrics", "/version"):
        op = paths.get(path, {}).get("get")
        if op is not None:
            ok = op.setdefault("responses", {}).setdefault("200", {"description": "OK"})
            ok["content"] = {TEXT: {"schema": {"type": "string"}}}
    return doc
