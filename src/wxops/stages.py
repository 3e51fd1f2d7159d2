"""The data stages of the pipeline, declared: inputs, outputs, cache key, function.

Each :class:`Stage` names the values it reads and the values it produces, the parts of
its cache key (config sections and the digests of its inputs) and the modules whose
source is part of that key. Its function turns inputs into outputs and does no MLflow
call, no config reading and no progress output; :func:`run_stage` looks the key up in
the cache, runs the function on a miss and stores its outputs under their names, so
``wxops.pipeline`` is the wiring of these stages and the tracking around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wxops.cache import StageCache, make_key
from wxops.config import WxopsConfig, section_hash
from wxops.progress import Reporter

MapFn = Callable[[Callable[[Any], Any], list[Any]], list[Any]]
"""``map(fn, tasks) -> results`` of the configured executor (local or Dask)."""


@dataclass(frozen=True)
class StageContext:
    """What a stage may use besides its inputs: where to put scratch files, the executor."""

    project_dir: Path
    map: MapFn
    key: str
    """This stage's cache key (names scratch folders that belong to these outputs)."""


@dataclass(frozen=True)
class Stage:
    """One cached step of the pipeline.

    ``run(cfg, inputs, context)`` returns the outputs in the order of ``outputs``;
    ``key(cfg, inputs)`` the parts of the cache key besides the source of ``code``;
    ``label(cfg)`` the progress line; ``then(cfg, outputs, report)``, if set, the
    config the later stages see (run or read from the cache alike).
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    code: tuple[str, ...]
    key: Callable[[WxopsConfig, Mapping[str, Any]], tuple[str, ...]]
    run: Callable[[WxopsConfig, Mapping[str, Any], StageContext], tuple[Any, ...]]
    label: Callable[[WxopsConfig], str]
    then: Callable[[WxopsConfig, Mapping[str, Any], Reporter], WxopsConfig] | None = None


def used_columns(cfg: WxopsConfig) -> list[str]:
    """Target and predictors, in that order, each once (what ingest reads and checks)."""
    return list(dict.fromkeys([cfg.features.target, *cfg.features.predictors]))


# --- ingest + QC --------------------------------------------------------------------------


def _ingest_key(cfg: WxopsConfig, inputs: Mapping[str, Any]) -> tuple[str, ...]:
    return (inputs["raw_digest"], section_hash(cfg.data), ",".join(used_columns(cfg)),
            section_hash(cfg.split))


def _ingest(cfg: WxopsConfig, inputs: Mapping[str, Any], context: StageContext) -> tuple[Any, ...]:
    """Observations after QC with their blocks (tabular), or NWP matched to stations."""
    from wxops.data.lineage import digest_frame

    if cfg.data.is_nwp:
        from wxops.data.nwp import expand_paths
        from wxops.data.nwp_table import ingest_nwp

        assert cfg.data.nwp is not None
        files = expand_paths(cfg.data.nwp.paths)
        clean, nwp_qc = ingest_nwp(cfg, files, context.project_dir / ".wxops" / "nwp" / context.key[:16],
                                   context.map)
        return clean, nwp_qc, nwp_qc.rows + nwp_qc.rows_without_obs, digest_frame(clean)
    from wxops.data.qc import apply_qc, check_target
    from wxops.data.sources import read_source
    from wxops.split import assign_blocks

    raw = read_source(cfg.data)
    clean, qc_report = apply_qc(raw, used_columns(cfg), cfg.data.qc, target=cfg.features.target)
    check_target(clean, cfg.features.target, qc_report)
    clean = assign_blocks(clean, cfg.split)
    return clean, qc_report, len(raw), digest_frame(clean)


def _after_qc(cfg: WxopsConfig, outputs: Mapping[str, Any], report: Reporter) -> WxopsConfig:
    """Say what QC did; predictors it dropped whole (stuck or empty) are trained without."""
    from wxops.data.qc import QCReport, features_after_qc

    qc = outputs["qc"]
    if not isinstance(qc, QCReport):
        return cfg
    for message in qc.messages:
        report.info(f"QC: {message}")
    return cfg.model_copy(update={"features": features_after_qc(cfg.features, qc)})


INGEST = Stage(
    name="ingest",
    inputs=("raw_digest",),
    outputs=("obs", "qc", "raw_rows", "obs_digest"),
    code=("wxops.data.sources", "wxops.data.qc", "wxops.data.nwp", "wxops.data.nwp_table"),
    key=_ingest_key,
    run=_ingest,
    label=lambda cfg: "ingest NWP at stations" if cfg.data.is_nwp else "ingest + QC",
    then=_after_qc,
)


# --- features -----------------------------------------------------------------------------


def _features(cfg: WxopsConfig, inputs: Mapping[str, Any], context: StageContext) -> tuple[Any, ...]:
    """The modelling table (inputs and target) from the observations."""
    from wxops.data.lineage import digest_frame

    if cfg.data.is_nwp:
        from wxops.data.nwp_table import build_nwp_features

        table = build_nwp_features(inputs["obs"], cfg.features, cfg.split)
    else:
        from wxops.features import build_features

        table = build_features(inputs["obs"], cfg.features)
    return table, digest_frame(table.frame)


FEATURES = Stage(
    name="features",
    inputs=("obs", "obs_digest"),
    outputs=("table", "table_digest"),
    code=("wxops.features",),
    key=lambda cfg, inputs: (inputs["obs_digest"], section_hash(cfg.features)),
    run=_features,
    label=lambda cfg: "features",
)


# --- split --------------------------------------------------------------------------------


def _split(cfg: WxopsConfig, inputs: Mapping[str, Any], context: StageContext) -> tuple[Any, ...]:
    """Train, validation and test rows (time blocks, or NWP init times) and their digests."""
    from wxops.data.lineage import digest_frame
    from wxops.split import split_by_blocks, split_by_init_time

    frame = inputs["table"].frame
    split = split_by_init_time(frame, cfg.split) if cfg.data.is_nwp else split_by_blocks(frame, cfg.split)
    return split, {n: digest_frame(getattr(split, n)) for n in ("train", "validation", "test")}


SPLIT = Stage(
    name="split",
    inputs=("table", "table_digest"),
    outputs=("split", "split_digests"),
    code=("wxops.split",),
    key=lambda cfg, inputs: (inputs["table_digest"], section_hash(cfg.split)),
    run=_split,
    label=lambda cfg: "split",
)

#: The data stages in order: raw file -> observations -> modelling table -> split.
DATA_STAGES: tuple[Stage, ...] = (INGEST, FEATURES, SPLIT)


def run_stage(
    stage: Stage,
    cfg: WxopsConfig,
    values: dict[str, Any],
    *,
    cache: StageCache,
    code: str,
    report: Reporter,
    project_dir: Path,
    map_fn: MapFn,
) -> tuple[WxopsConfig, bool]:
    """Add ``stage``'s outputs to ``values`` (from the cache when its key is there).

    Returns the config later stages use and whether the outputs came from the cache.
    """
    missing = [name for name in stage.inputs if name not in values]
    if missing:
        raise ValueError(f"stage {stage.name} needs {missing}, which no earlier stage produced")
    inputs = {name: values[name] for name in stage.inputs}
    key = make_key(*stage.key(cfg, inputs), code)
    outputs = cache.get(stage.name, key)
    hit = outputs is not None
    if outputs is None:
        with report.stage(stage.label(cfg)):
            outputs = stage.run(cfg, inputs, StageContext(project_dir, map_fn, key))
        cache.put(stage.name, key, outputs)
    else:
        report.skip(stage.label(cfg), "unchanged (cached)")
    values.update(zip(stage.outputs, outputs, strict=True))
    if stage.then is not None:
        cfg = stage.then(cfg, values, report)
    return cfg, hit
