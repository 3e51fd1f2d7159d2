"""The served model and its hot swap: follow a registry alias, swap atomically.

A request reads :attr:`ModelHolder.current` once and uses that :class:`LoadedModel` to
the end, so an in-flight request always finishes on the model it started with and its
response names that model's version. A reload builds the new model completely (load,
compile, check, warm-up) *beside* the old one and then replaces one reference, which is
atomic in Python; no request ever sees a half-loaded model, and none fails during the
swap.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wxops.errors import ServeError, TrackingError
from wxops.serve.fastpath import Predictor, build_predictor, synthetic_batch
from wxops.serve.payload import Batch, InputSchema

log = logging.getLogger(__name__)

#: Version tag (set at promotion) listing [input, previous type, new type] of a breaking change.
SIGNATURE_CHANGE_TAG = "wxops.signature_change"
#: Version tag (set at registration of NWP models): the key columns of a request.
KEY_COLUMNS_TAG = "wxops.key_columns"
#: Output column of a probability model: ``p_below_1000`` (``wxops.models.probability``).
_PROBABILITY_COLUMN = re.compile(r"^p_(?P<event>below|above)_(?P<threshold>[0-9.eE+-]+)$")
#: Collect and freeze the heap before each swap (:func:`freeze_heap_at_swaps`).
_freeze_heap = False

_REF = re.compile(r"^(?:models:/)?(?P<name>[^@/\s]+)(?:@(?P<alias>[\w.-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ModelRef:
    """``name@alias`` (followed as the alias moves) or ``name/version`` (pinned)."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"


def parse_model_ref(text: str) -> ModelRef:
    """Parse ``visibility@champion``, ``visibility/3`` or ``models:/visibility@champion``."""
    match = _REF.match(text.strip())
    if match is None:
        raise ServeError(f"--model {text!r}: write NAME@ALIAS (e.g. visibility@champion) or "
                         "NAME/VERSION (e.g. visibility/3)")
    return ModelRef(match["name"], match["alias"], match["version"])


@dataclass(frozen=True)
class LoadedModel:
    """A model version ready to predict, with what ``GET /model`` reports about it."""

    name: str
    version: str
    run_id: str
    source: str
    signature: list[dict[str, Any]]
    schema: InputSchema
    predictor: Predictor
    tags: dict[str, str]
    outputs: tuple[str, ...] = ()
    """Named output columns (probability models: ``p_below_1000``...); empty when the
    model answers one unnamed value per row."""
    loaded_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))

    def predict(self, batch: Batch) -> np.ndarray:
        """One value per row (shape ``(n,)``), or one per output column (``(n, k)``)."""
        return self.predictor.fn(batch)

    @property
    def probability(self) -> dict[str, Any] | None:
        """``{"event": "below", "thresholds": [1000.0, 5000.0], "columns": [...]}`` for a
        probability model (every output named ``p_<event>_<threshold>``), else None."""
        found = [_PROBABILITY_COLUMN.match(c) for c in self.outputs]
        if not found or any(m is None for m in found):
            return None
        events = {m["event"] for m in found if m is not None}
        try:
            thresholds = [float(m["threshold"]) for m in found if m is not None]
        except ValueError:
            return None
        if len(events) != 1:
            return None
        return {"event": events.pop(), "thresholds": thresholds, "columns": list(self.outputs)}

    def records(self, result: np.ndarray) -> np.ndarray | list[dict[str, float]]:
        """The answer's rows: the numbers as they are, or ``{column: value}`` objects for
        named outputs (the records of the data frame the model's own ``predict`` returns,
        as MLflow's scoring server writes a data frame)."""
        if not self.outputs:
            return result
        names = self.outputs
        return [dict(zip(names, row, strict=True)) for row in result.tolist()]

    @property
    def key_columns(self) -> list[str]:
        """Columns identifying a forecast besides the inputs (NWP MOS: ``station``,
        ``init_time``, ``lead_time``), echoed in answers and written to the log."""
        raw = self.tags.get(KEY_COLUMNS_TAG, "")
        return [k for k in raw.split(",") if k]

    def change_note(self, column: str | None) -> str:
        """Why ``column`` (sent or left out by a client) changed, from the breaking change
        recorded at promotion; empty when the version records none for it."""
        raw = self.tags.get(SIGNATURE_CHANGE_TAG)
        if not raw or column is None:
            return ""
        for name, before, after in json.loads(raw):
            if name == column:
                what = ("removed" if after == "–" else "added" if before == "–"
                        else f"changed from {before} to {after}")
                return (f" — '{column}' was {what} by the breaking change of version "
                        f"{self.version} ({self.tags.get('wxops.semver', '?')}); send the inputs "
                        "GET /model lists")
        return ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "source": self.source,
            "signature": {"inputs": self.signature},
            "data_digest": self.tags.get("data_sha256"),
            "training_data_digest": self.tags.get("training_data_sha256"),
            "config_hash": self.tags.get("config_hash"),
            "git_commit": self.tags.get("git_commit"),
            "key_columns": self.key_columns,
            "semver": self.tags.get("wxops.semver"),
            "change_class": self.tags.get("wxops.change_class"),
            "signature_change": json.loads(self.tags.get(SIGNATURE_CHANGE_TAG) or "[]"),
            "loaded_at": self.loaded_at,
            "predict_path": self.predictor.path,
            "outputs": self.describe_outputs(),
        }

    def describe_outputs(self) -> dict[str, Any]:
        """What ``/predict`` answers per row: a value, or named probabilities."""
        probability = self.probability
        if probability is not None:
            return {"kind": "probability", **probability,
                    "description": "probability of the target "
                                   f"{probability['event']} each threshold, one object per "
                                   "row with one member per column"}
        if self.outputs:
            return {"kind": "columns", "columns": list(self.outputs)}
        return {"kind": "value", "columns": []}


def load_model(name: str, version: str) -> LoadedModel:
    """Load, compile, check and warm up version ``version`` of ``name`` (tracking must be
    connected)."""
    from wxops import tracking

    with _dead_code_paths_dropped():
        servable = tracking.load_servable_model(name, version)
    schema = InputSchema.from_signature(servable.inputs)
    predictor = build_predictor(servable.model, schema)
    warm = predictor.fn(synthetic_batch(schema, 1))
    outputs = tuple(str(o["name"]) for o in servable.outputs if o.get("name"))
    if len(outputs) < 2:
        outputs = ()  # one output: a plain value per row, named or not
    want = (1, len(outputs)) if outputs else (1,)
    if warm.shape != want:
        raise ServeError(f"{name}/{version} returns {warm.shape} for one row but its signature "
                         f"names {len(outputs) or 1} output(s); wxops serve serves one value per "
                         "row or one per named output column")
    return LoadedModel(
        name=servable.name, version=servable.version, run_id=servable.run_id,
        source=servable.source, signature=servable.inputs, schema=schema,
        predictor=predictor, tags=servable.tags, outputs=outputs,
    )


@contextlib.contextmanager
def _dead_code_paths_dropped() -> Iterator[None]:
    """Remove the ``sys.path`` entries a model load added whose folder is gone again.

    MLflow puts a loaded model's ``code_paths`` folder first on ``sys.path`` on every load;
    wxops loads from a temporary copy that is deleted afterwards, so without this every
    hot swap left one more dead entry (searched, in vain, by every later import).
    """
    before = set(sys.path)
    try:
        yield
    finally:
        sys.path[:] = [p for p in sys.path if p in before or os.path.isdir(p)]


class ModelHolder:
    """Holds the current model; reloads it when the alias moves (poll or on demand).

    Args:
        ref: what to serve.
        loader: ``(name, version) -> LoadedModel`` (:func:`load_model` in production).
        resolver: ``(ref) -> version`` the registry currently points at.
    Listeners added with :meth:`subscribe` hear of every swap and every failed load
    (metrics, logs), whoever triggered it: start-up, the poller or ``/admin/reload``.
    """

    def __init__(
        self,
        ref: ModelRef,
        *,
        loader: Callable[[str, str], LoadedModel] = load_model,
        resolver: Callable[[ModelRef], str] | None = None,
    ) -> None:
        self.ref = ref
        self._loader = loader
        self._resolver = resolver or _resolve
        self._on_swap: list[Callable[[LoadedModel | None, LoadedModel], None]] = []
        self._on_error: list[Callable[[str], None]] = []
        self._current: LoadedModel | None = None
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.last_error: str | None = None

    def subscribe(
        self,
        on_swap: Callable[[LoadedModel | None, LoadedModel], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """Call ``on_swap(old, new)`` after each swap, ``on_error(reason)`` after a failed load."""
        if on_swap is not None:
            self._on_swap.append(on_swap)
        if on_error is not None:
            self._on_error.append(on_error)

    @property
    def current(self) -> LoadedModel | None:
        """The model new requests use (read once per request)."""
        return self._current

    def reload(self) -> tuple[LoadedModel, bool]:
        """Load the version the reference points at, if new; return (model, swapped).

        Concurrent calls are serialised; a failed load leaves the current model serving
        and raises (TrackingError/ServeError) with the reason kept in :attr:`last_error`.
        """
        with self._reload_lock:
            try:
                version = self._resolver(self.ref)
                old = self._current
                if old is not None and old.version == version:
                    self.last_error = None
                    return old, False
                new = self._loader(self.ref.name, version)
            except (TrackingError, ServeError) as exc:
                self._failed(str(exc))
                raise
            except Exception as exc:  # unpickling, artifact I/O: keep serving the old one
                reason = f"cannot load {self.ref}: {type(exc).__name__}: {exc}"
                self._failed(reason)
                raise ServeError(reason) from exc
            if _freeze_heap:
                settle_heap()
            self._current = new  # the swap: one reference assignment
            self.last_error = None
            for listener in self._on_swap:
                listener(old, new)
            log.info("serving %s version %s (was %s)", new.name, new.version,
                     old.version if old else "none")
            return new, True

    def _failed(self, reason: str) -> None:
        self.last_error = reason
        for listener in self._on_error:
            listener(reason)

    def start_polling(self, interval: float) -> None:
        """Follow the alias every ``interval`` seconds in a daemon thread (0: never)."""
        if interval <= 0 or self.ref.alias is None or self._poller is not None:
            return
        self._poller = threading.Thread(target=self._poll, args=(interval,),
                                        name="wxops-model-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.reload()
            except (TrackingError, ServeError) as exc:
                log.warning("model poll: keeping version %s: %s",
                            self._current.version if self._current else "none", exc)


def _resolve(ref: ModelRef) -> str:
    from wxops import tracking

    return tracking.resolve_model_version(ref.name, alias=ref.alias, version=ref.version)


def freeze_heap_at_swaps(on: bool = True) -> None:
    """Make every :meth:`ModelHolder.reload` run :func:`settle_heap` before it swaps.

    Set by ``wxops serve`` at a worker's start; off elsewhere (tests, notebooks), where a
    full collection per load would only cost time.
    """
    global _freeze_heap
    _freeze_heap = on


def settle_heap() -> None:
    """Collect the heap once and freeze what survives (``gc.freeze``).

    A loaded model brings ~500 000 long-lived Python objects (PyTorch, MLflow, pandas).
    The collector's full passes scan all of them: ~0.3 s with the GIL held, every few
    seconds under load (requests make short-lived objects that age into the oldest
    generation), a stall of every connection that set a 0.1-0.3 s p99. Frozen objects are
    never scanned again, so those passes see only what requests make. Unfreezing first
    lets this collection free what the model before last left in cycles. Run at a swap,
    where a single pause is expected (loading already takes seconds).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
