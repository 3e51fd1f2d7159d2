"""The FastAPI application: routes, body limit, auth, validation, metrics, prediction log.

Handlers read raw bytes and answer with orjson-encoded bytes: no pydantic models on the
hot path (the request schemas are documented in OpenAPI all the same). ``POST /predict``
and ``POST /invocations`` are answered by a pure-ASGI handler in front of FastAPI
(:class:`ServiceApp`): FastAPI's routing, dependency and exception layers cost more per
request (~50 us) than validating and predicting one row; the same code answers through
the FastAPI routes, which document them. Cheap predictions run on the event loop,
avoiding a thread hop that costs more than the prediction; those whose measured cost is
higher go to a bounded pool (:mod:`wxops.serve.executor`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wxops.errors import PayloadError, ServeError, TrackingError
from wxops.serve.auth import TokenSet
from wxops.serve.executor import Overloaded, attach_runner, model_key
from wxops.serve.metrics import CONTENT_TYPE, ServiceMetrics
from wxops.serve.model import LoadedModel, ModelHolder
from wxops.serve.payload import (
    Batch,
    InputSchema,
    batch_from_invocations,
    batch_from_predict,
    decode_json,
    split_keys,
    table_from_csv,
    table_from_invocations,
    table_from_predict,
    validate_table,
)
from wxops.serve.predlog import LogEntry, PredictionSink
from wxops.serve.settings import ServeSettings

log = logging.getLogger(__name__)

_JSON = "application/json"
_ENDPOINTS = frozenset({"/predict", "/invocations", "/health", "/ping", "/ready", "/model",
                        "/metrics", "/admin/reload", "/version"})

_PREDICT_EXAMPLES = {
    "classic": {
        "summary": "pandas DataFrame.to_json() string (the classic client)",
        "value": {"data": '{"time":{"0":"1988-01-01T06:00:00"},"t2m":{"0":10.0},'
                          '"td2m":{"0":6.1},"rh":{"0":77.0},"pressure":{"0":993.0},'
                          '"wind_speed":{"0":6.2},"wind_dir":{"0":200.0},'
                          '"total_cloud":{"0":10.0},"opaque_cloud":{"0":10.0}}'},
    },
    "records": {
        "summary": "records",
        "value": [{"time": "1988-01-01T06:00:00", "t2m": 10.0, "td2m": 6.1, "rh": 77.0,
                   "pressure": 993.0, "wind_speed": 6.2, "wind_dir": 200.0,
                   "total_cloud": 10.0, "opaque_cloud": 10.0}],
    },
    "columns": {
        "summary": "columns",
        "value": {"time": ["1988-01-01T06:00:00"], "t2m": [10.0], "td2m": [6.1],
                  "rh": [77.0], "pressure": [993.0], "wind_speed": [6.2],
                  "wind_dir": [200.0], "total_cloud": [10.0], "opaque_cloud": [10.0]},
    },
}
_INVOCATION_EXAMPLES = {
    "dataframe_split": {"summary": "MLflow dataframe_split", "value": {"dataframe_split": {
        "columns": ["time", "t2m", "td2m", "rh", "pressure", "wind_speed", "wind_dir",
                    "total_cloud", "opaque_cloud"],
        "data": [["1988-01-01T06:00:00", 10.0, 6.1, 77.0, 993.0, 6.2, 200.0, 10.0, 10.0]]}}},
}


def _doc(examples: dict[str, Any], ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {"required": True,
                        "content": {_JSON: {"schema": {}, "examples": examples}}},
        "responses": {
            "200": {"description": "Predictions", "content": {_JSON: {"example": ok}}},
            "400": {"description": "Empty body, malformed JSON or unknown shape"},
            "401": {"description": "Missing or invalid bearer token"},
            "403": {"description": "Token lacks the 'predict' scope"},
            "413": {"description": "Body over the configured limit"},
            "422": {"description": "Missing/extra column, wrong type, NaN/inf, out of range"},
            "503": {"description": "No model loaded yet, or the prediction queue is full "
                                   "(Retry-After says when to retry)"},
        },
        "security": [{"bearer": []}],
    }


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type=_JSON, headers=headers)


def _error(status: int, message: str, field: str | None = None,
           headers: dict[str, str] | None = None) -> Response:
    return _json({"error": message, "field": field, "status": status}, status, headers)


@dataclass(frozen=True, slots=True)
class Answer:
    """A prediction route's response: status, JSON body and headers besides the content
    type (as raw ASGI header pairs)."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def error(cls, status: int, message: str, field: str | None = None,
              headers: dict[str, str] | None = None) -> Answer:
        body = orjson.dumps({"error": message, "field": field, "status": status})
        return cls(status, body, tuple((k.lower().encode("latin-1"), v.encode("latin-1"))
                                       for k, v in (headers or {}).items()))

    def response(self) -> Response:
        """As a Starlette response (the FastAPI routes)."""
        return Response(self.body, status_code=self.status, media_type=_JSON,
                        headers={k.decode("latin-1"): v.decode("latin-1")
                                 for k, v in self.headers})

    async def send(self, send: Send) -> None:
        """Straight to the ASGI server (the pure-ASGI handler)."""
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self.body)).encode()),
                                *self.headers]})
        await send({"type": "http.response.body", "body": self.body})


class RequestMetrics:
    """Counts and times HTTP requests by endpoint and status."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self._cache: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        found = self._cache.get(key)
        if found is None:  # labelled children looked up once per label set (labels() is slow)
            code = str(status)
            found = (self.metrics.requests.labels(endpoint, method, code),
                     self.metrics.latency.labels(endpoint, code))
            self._cache[key] = found
        found[0].inc()
        found[1].observe(seconds)


class MetricsMiddleware:
    """Pure-ASGI middleware: counts and times every HTTP request by endpoint and status."""

    def __init__(self, app: ASGIApp, recorder: RequestMetrics) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        path = scope["path"]
        endpoint = path if path in _ENDPOINTS else "other"

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.recorder.record(endpoint, scope["method"], status,
                                 time.perf_counter() - started)


PredictRoute = Callable[[Scope, Receive, Send], Awaitable[None]]


class ServiceApp(FastAPI):
    """FastAPI with a pure-ASGI front for the prediction routes.

    ``POST`` to a path in :attr:`hot` is answered by that handler directly; everything
    else (other methods and paths, docs, errors) goes through FastAPI as usual.
    """

    hot: dict[str, PredictRoute]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.hot.get(scope["path"])
            if handler is not None:
                await handler(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: ServeSettings,
    holder: ModelHolder,
    *,
    tokens: TokenSet | None,
    metrics: ServiceMetrics | None = None,
    on_admin_reload: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the service around ``holder``.

    Args:
        settings: limits, auth switch, prediction log, polling.
        holder: the model (loaded in the background at start-up; ``/ready`` says when).
        tokens: configured bearer tokens; must be given unless ``settings.auth`` is off.
        metrics: a :class:`ServiceMetrics` (a fresh one by default).
        on_admin_reload: also called by ``POST /admin/reload`` (multi-worker broadcast).
    """
    if settings.auth and tokens is None:
        raise ServeError("auth is on but no tokens were given")
    metrics = metrics or ServiceMetrics()
    sink = PredictionSink(settings.prediction_log, metrics)

    def on_swap(old: LoadedModel | None, new: LoadedModel) -> None:
        metrics.reloads.labels("swapped").inc()
        metrics.set_model((old.name, old.version, old.run_id) if old else None,
                          (new.name, new.version, new.run_id))

    holder.subscribe(on_swap=on_swap,
                     on_error=lambda _reason: metrics.reloads.labels("failed").inc())
    runner = attach_runner(holder, metrics, inline_seconds=settings.inline_ms / 1000,
                           queue_limit=settings.queue_limit)

    def initial_load() -> None:
        try:
            holder.reload()
        except (TrackingError, ServeError) as exc:
            log.error("cannot load %s yet (retrying every poll): %s", holder.ref, exc)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sink.start()
        loader = threading.Thread(target=initial_load, name="wxops-model-load", daemon=True)
        loader.start()
        holder.start_polling(settings.poll_seconds or 0.0)
        try:
            yield
        finally:
            holder.stop()
            loader.join(timeout=60)
            runner.shutdown()
            sink.stop()

    app = ServiceApp(
        title="wxops inference service",
        description="Predictions of the registered model, validated against its signature "
                    "and the physical ranges of wxops' QC table. Send 'Authorization: Bearer "
                    "<token>' (scope 'predict'; 'admin' for /admin/*).",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.sink = sink
    app.state.metrics = metrics
    max_body = settings.max_body_bytes
    rows_counter = {e: metrics.rows.labels(e) for e in ("/predict", "/invocations")}
    recorder = RequestMetrics(metrics)

    def authorize(request: Request, scope: str) -> Response | None:
        denied = authorize_header(request.headers.get("authorization"), scope)
        return None if denied is None else denied.response()

    def authorize_header(authorization: str | None, scope: str) -> Answer | None:
        if tokens is None:
            return None
        result = tokens.check(authorization, scope)
        if result.status == 200:
            return None
        headers = {"WWW-Authenticate": 'Bearer realm="wxops"'} if result.status == 401 else None
        return Answer.error(result.status, result.reason, headers=headers)

    def check_declared(declared: str | None) -> None:
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            raise PayloadError(f"body of {int(declared)} bytes is over the limit of {max_body} "
                               "bytes; send fewer rows per request", status=413)

    def over_limit() -> PayloadError:
        return PayloadError(f"body is over the limit of {max_body} bytes; send fewer rows per "
                            "request", status=413)

    async def read_request(request: Request) -> bytes:
        check_declared(request.headers.get("content-length"))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise over_limit()
            chunks.append(chunk)
        return b"".join(chunks)

    # One header tuple per served version, built when it is first answered from.
    model_headers: dict[tuple[str, str, str], tuple[tuple[bytes, bytes], ...]] = {}

    def headers_of(model: LoadedModel) -> tuple[tuple[bytes, bytes], ...]:
        key = model_key(model)
        found = model_headers.get(key)
        if found is None:
            model_headers.clear()  # only the versions being served are kept
            found = model_headers[key] = (
                (b"x-model-name", model.name.encode("latin-1")),
                (b"x-model-version", model.version.encode("latin-1")),
                (b"x-model-run-id", model.run_id.encode("latin-1")))
        return found

    async def serve(
        endpoint: str, authorization: str | None, content_type: str,
        read: Callable[[], Awaitable[bytes]],
    ) -> Answer:
        """Authorize, read, validate, predict, log: the answer to one prediction request."""
        denied = authorize_header(authorization, "predict")
        if denied is not None:
            return denied
        model = holder.current  # read once: this request finishes on this model
        if model is None:
            return Answer.error(503, f"no model loaded yet ({holder.last_error or 'loading'})")
        received = time.time()
        is_csv = content_type.split(";")[0].strip().lower() == "text/csv"
        is_predict = endpoint == "/predict"
        schema = model.schema
        key_columns = model.key_columns
        keyed: dict[str, np.ndarray] = {}

        def decode(body: bytes) -> Batch:
            if is_csv:  # MLflow's scoring protocol also speaks CSV
                table = table_from_csv(body)
                bools = True
            else:
                parsed = decode_json(body)
                bools = b"true" in body or b"false" in body
                if not (bools or key_columns):  # the common bodies, read at once
                    fast = (batch_from_predict if is_predict else batch_from_invocations)(
                        parsed, schema)
                    if fast is not None:
                        return fast
                table = (table_from_predict(parsed) if is_predict
                         else table_from_invocations(parsed, schema))
            if key_columns:  # NWP MOS: station, init_time, lead_time identify a row
                table, found = split_keys(table, schema, key_columns)
                keyed.update(found)
            batch = validate_table(table, schema, bools_possible=bools)
            for key in key_columns:
                if key in batch.columns:
                    keyed[key] = batch.columns[key]
            return batch

        try:
            body = await read()
            batch, result = await runner.run(model_key(model), body, decode, _n_rows,
                                             model.predict)
        except Overloaded as exc:
            return Answer.error(503, str(exc), headers={"Retry-After": str(exc.retry_after)})
        except PayloadError as exc:
            return Answer.error(exc.status, str(exc) + model.change_note(exc.field), exc.field)
        rows_counter[endpoint].inc(batch.n_rows)
        sink.submit(LogEntry(received, endpoint, model.name, model.version, model.run_id,
                             {**batch.columns, **keyed} if keyed else batch.columns, result,
                             model.outputs))
        payload: dict[str, Any]
        if is_predict:
            payload = {"model_name": model.name, "model_version": model.version,
                       "model_run_id": model.run_id, "result": model.records(result)}
            if keyed:
                payload["keys"] = _keys_json(keyed)
        else:
            payload = {"predictions": model.records(result)}
        return Answer(200, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
                      headers_of(model))

    def asgi_route(endpoint: str) -> PredictRoute:
        """``endpoint`` as a bare ASGI handler: metrics, body limit and errors as the
        FastAPI stack would give them."""

        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            started = time.perf_counter()
            authorization: str | None = None
            content_type = ""
            declared: str | None = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    if authorization is None:
                        authorization = value.decode("latin-1")
                elif name == b"content-type":
                    if not content_type:
                        content_type = value.decode("latin-1")
                elif name == b"content-length" and declared is None:
                    declared = value.decode("latin-1")

            async def read() -> bytes:
                check_declared(declared)
                chunks: list[bytes] = []
                size = 0
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientDisconnect()
                    chunk = message.get("body", b"")
                    if chunk:
                        size += len(chunk)
                        if size > max_body:
                            raise over_limit()
                        chunks.append(chunk)
                    if not message.get("more_body", False):
                        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

            status = 500
            answer: Answer | None = None
            try:
                answer = await serve(endpoint, authorization, content_type, read)
                status = answer.status
                await answer.send(send)
            except ClientDisconnect:
                status = 499  # the client went away before sending its whole body
            except Exception:
                if answer is None:
                    await Answer.error(500, "internal server error").send(send)
                status = 500
                raise  # as FastAPI's error middleware: uvicorn logs the traceback
            finally:
                recorder.record(endpoint, "POST", status, time.perf_counter() - started)

        return handle

    app.hot = {endpoint: asgi_route(endpoint) for endpoint in ("/predict", "/invocations")}

    async def route(request: Request, endpoint: str) -> Response:
        answer = await serve(endpoint, request.headers.get("authorization"),
                             request.headers.get("content-type", ""),
                             lambda: read_request(request))
        return answer.response()

    @app.post("/predict", openapi_extra=_doc(_PREDICT_EXAMPLES, {
        "model_name": "visibility", "model_version": "3",
        "model_run_id": "30368539d2464fc5b05c069cb15268a2", "result": [16093.0]}),
        summary="Predict from a DataFrame (to_json string, records or columns)",
        description="'result' holds one value per row; a probability model answers one "
                    "object per row instead, e.g. {\"p_below_1000\": 0.02, \"p_below_5000\": "
                    "0.11} (GET /model lists the columns and thresholds).")
    async def predict(request: Request) -> Response:
        return await route(request, "/predict")

    @app.post("/invocations", openapi_extra=_doc(_INVOCATION_EXAMPLES, {
        "predictions": [16093.0]}), summary="MLflow scoring protocol")
    async def invocations(request: Request) -> Response:
        return await route(request, "/invocations")

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> Response:
        return _json({"status": "ok", "auth": tokens is not None})

    @app.get("/ping", summary="Liveness (MLflow's scoring-server name)")
    async def ping() -> Response:
        return _json({"status": "ok"})

    @app.get("/version", summary="wxops version (MLflow's scoring-server route)",
             response_class=PlainTextResponse)
    async def version() -> Response:
        from wxops import __version__

        return Response(__version__, media_type="text/plain")

    @app.get("/ready", summary="Readiness: a model is loaded (and the last reload's error)")
    async def ready() -> Response:
        model = holder.current
        if model is None:
            return _error(503, f"no model loaded yet ({holder.last_error or 'loading'})")
        # Still ready (the previous model serves), but a failed reload is reported: the
        # registry points somewhere the service refused to go (e.g. a damaged artifact).
        return _json({"status": "ready", "model_name": model.name,
                      "model_version": model.version,
                      "last_reload_error": holder.last_error})

    @app.get("/model", summary="Name, version, run id, signature, data digest, load time",
             openapi_extra={"security": [{"bearer": []}]})
    async def model_info(request: Request) -> Response:
        denied = authorize(request, "predict")
        if denied is not None:
            return denied
        model = holder.current
        if model is None:
            return _error(503, f"no model loaded yet ({holder.last_error or 'loading'})")
        info = model.describe()
        info.update({"following": str(holder.ref), "poll_seconds": settings.poll_seconds,
                     "last_reload_error": holder.last_error})
        return _json(info)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics_route() -> Response:
        metrics.reload_failing.set(1 if holder.last_error else 0)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.post("/admin/reload", summary="Load the version the alias points at now (admin)",
              openapi_extra={"security": [{"bearer": []}]})
    async def admin_reload(request: Request) -> Response:
        denied = authorize(request, "admin")
        if denied is not None:
            return denied
        before = holder.current
        try:
            model, swapped = await anyio.to_thread.run_sync(holder.reload)
        except (TrackingError, ServeError) as exc:
            return _error(502, f"reload failed, still serving "
                               f"{before.version if before else 'nothing'}: {exc}")
        if not swapped:
            metrics.reloads.labels("unchanged").inc()
        if on_admin_reload is not None:
            on_admin_reload()
        return _json({"swapped": swapped, "model_version": model.version,
                      "previous_version": before.version if before else None,
                      "model_run_id": model.run_id})

    app.openapi = _openapi_with_bearer(app)  # type: ignore[method-assign]
    app.add_middleware(MetricsMiddleware, recorder=recorder)
    return app


def _n_rows(batch: Batch) -> int:
    return batch.n_rows


def _keys_json(keyed: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """Key columns of an NWP answer: times as ISO strings (UTC), plus the valid time."""
    out: dict[str, list[Any]] = {}
    for key, arr in keyed.items():
        out[key] = ([str(t) + "Z" for t in arr.astype("datetime64[s]")]
                    if arr.dtype.kind == "M" else arr.tolist())
    if "init_time" in keyed and "lead_time" in keyed:
        valid = keyed["init_time"] + (keyed["lead_time"].astype(float) * 3.6e12).astype(
            "timedelta64[ns]")
        out["valid_time"] = [str(t) + "Z" for t in valid.astype("datetime64[s]")]
    return out


def _openapi_with_bearer(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The document, with request bodies from the served model's signature (rebuilt when
    the served version changes)."""
    from wxops.serve.openapi import patch_document

    built: dict[str | None, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        model = app.state.holder.current
        key = None if model is None else f"{model.name}/{model.version}"
        if key not in built:
            schema = get_openapi(title=app.title, version="1", description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}}
            model_schema: InputSchema | None = None if model is None else model.schema
            built.clear()
            built[key] = patch_document(schema, model_schema,
                                        None if model is None else model.describe_outputs())
        app.openapi_schema = built[key]
        return built[key]

    return openapi

