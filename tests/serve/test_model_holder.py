"""Model references, the holder's atomic swap and what happens when a load fails."""

from __future__ import annotations

import pytest

from tests.serve.conftest import SWAP_MODEL, Registry
from wxops.errors import ServeError, TrackingError
from wxops.serve.model import ModelHolder, ModelRef, load_model, parse_model_ref


@pytest.mark.parametrize(("text", "ref"), [
    ("visibility@champion", ModelRef("visibility", "champion")),
    ("models:/visibility@challenger", ModelRef("visibility", "challenger")),
    ("visibility/3", ModelRef("visibility", None, "3")),
])
def test_parse_model_ref(text: str, ref: ModelRef) -> None:
    assert parse_model_ref(text) == ref


@pytest.mark.parametrize("text", ["visibility", "visibility@", "a/b/c", "vis@champ ion", ""])
def test_bad_model_ref(text: str) -> None:
    with pytest.raises(ServeError, match="write NAME@ALIAS"):
        parse_model_ref(text)


def test_failed_reload_keeps_serving_the_old_model(registry: Registry) -> None:
    from wxops import tracking

    tracking.connect(registry.uri)
    versions = iter(["1", "2"])
    events: list[str] = []

    def loader(name: str, version: str) -> object:
        if version == "2":
            raise OSError("artifact store unreachable")
        return load_model(name, version)

    holder = ModelHolder(ModelRef(SWAP_MODEL, "champion"), loader=loader,  # type: ignore[arg-type]
                         resolver=lambda _ref: next(versions))
    holder.subscribe(on_swap=lambda old, new: events.append(f"swap {new.version}"),
                     on_error=lambda reason: events.append("error"))
    model, swapped = holder.reload()
    assert swapped and model.version == "1"
    with pytest.raises(ServeError, match="OSError: artifact store unreachable"):
        holder.reload()
    assert holder.current is model
    assert events == ["swap 1", "error"]
    assert "artifact store unreachable" in (holder.last_error or "")


def test_unknown_model_names_the_store(registry: Registry) -> None:
    from wxops import tracking

    tracking.connect(registry.uri)
    holder = ModelHolder(ModelRef("no-such-model", None, "1"))
    with pytest.raises(TrackingError, match="registered model 'no-such-model' has no version 1"):
        holder.reload()
    assert holder.current is None


def test_fifty_hot_swaps_do_not_grow_sys_path(registry: Registry) -> None:
    """MLflow puts each loaded model's ``code_paths`` folder on ``sys.path``; a long-running
    service swapping versions must not collect one dead entry per swap."""
    import itertools
    import sys

    import mlflow

    from wxops import tracking

    tracking.connect(registry.uri)
    info = mlflow.models.get_model_info(f"models:/{SWAP_MODEL}/1")
    assert info.flavors["python_function"].get("code")  # the model carries code_paths
    versions = itertools.cycle(["1", "2"])
    holder = ModelHolder(ModelRef(SWAP_MODEL, "champion"), resolver=lambda _ref: next(versions))
    holder.reload()
    before = list(sys.path)
    for _ in range(50):
        _, swapped = holder.reload()
        assert swapped
    assert sys.path == before


def test_swaps_freeze_the_heap_and_free_the_old_models_cycles() -> None:
    """A serving process collects and freezes the heap before each swap (the collector's
    full passes then skip the model's objects); the next swap's collection frees what the
    model before it left in reference cycles, so swaps do not pile up frozen garbage."""
    import gc
    import weakref

    from wxops.serve import model as served

    class Model:
        def __init__(self, version: str) -> None:
            self.name, self.version = SWAP_MODEL, version
            self.itself = self  # a reference cycle: only the cyclic collector frees it

    made: dict[str, Model] = {}

    def loader(name: str, version: str) -> Model:
        made[version] = Model(version)
        return made[version]

    versions = iter(["1", "2", "3"])
    holder = ModelHolder(ModelRef(SWAP_MODEL, "champion"), loader=loader,  # type: ignore[arg-type]
                         resolver=lambda _ref: next(versions))
    served.freeze_heap_at_swaps()
    try:
        gc.unfreeze()
        holder.reload()
        assert gc.get_freeze_count() > 0
        first_cycle = weakref.ref(made.pop("1"))
        holder.reload()  # version 1 becomes garbage, frozen with its cycle
        assert first_cycle() is not None
        holder.reload()  # this swap's collection unfreezes and frees it
        assert first_cycle() is None
        assert holder.current is made["3"]
    finally:
        served.freeze_heap_at_swaps(False)
        gc.unfreeze()
