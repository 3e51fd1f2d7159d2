"""Wiring of the stages: ingest+QC -> features -> split -> train N -> register.

Stage functions stay pure; this module does the I/O around them: the cache, MLflow
(through :mod:`wxops.tracking`), files under ``wxops-out/`` and progress reporting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wxops.cache import StageCache, code_version, make_key
from wxops.config import WxopsConfig, section_hash
from wxops.progress import Reporter, SilentReporter

#: Source modules whose code is part of the cache keys of training and of the whole run
#: (each data stage declares its own in ``wxops.stages``).
_STAGE_CODE: dict[str, tuple[str, ...]] = {
    "train": ("wxops.models.train", "wxops.models.mlp", "wxops.models.probability", "wxops.features",
              "wxops.models.task"),
    "record": ("wxops.pipeline", "wxops.stages", "wxops.tracking", "wxops.verify.probabilistic",
               "wxops.release.probability_gate", "wxops.verify.probability_report"),
}


@dataclass
class PipelineResult:
    """What a pipeline run produced (also the record a fully cached rerun replays)."""

    run_id: str
    tracking_uri: str
    experiment: str
    registered_model: str
    version: str
    became_champion: bool
    best: str
    metrics: dict[str, dict[str, float]]
    out_dir: str
    cached_stages: list[str] = field(default_factory=list)
    fully_cached: bool = False
    wall_seconds: float = 0.0
    gate_passed: bool | None = None
    """Whether the new version passed the release gate (None: no new version)."""
    release_message: str = ""
    """What the release step did and why (e.g. which gate rule failed)."""
    report: str = ""
    """The new version's verification report (HTML)."""
    summary: tuple[str, ...] = ()
    """Five lines: test-block scores against the references and the gate's rules."""
    selection: str = ""
    """Why this configuration was registered (the gate's reference rules on validation)."""
    probability_model: str = ""
    """Registered model of the best probability configuration ("" when none registered)."""
    probability_version: str = ""
    probability_best: str = ""
    probability_champion: bool = False
    probability_gate_passed: bool | None = None
    """Whether its new version passed the probability gate (None: no new version)."""
    probability_message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def project_paths(project_dir: Path) -> dict[str, Path]:
    return {
        "cache": project_dir / ".wxops" / "cache",
        "out": project_dir / "wxops-out",
    }


def run_pipeline(
    cfg: WxopsConfig,
    *,
    project_dir: Path,
    use_cache: bool = True,
    reporter: Reporter | None = None,
    stop_after: str | None = None,
) -> PipelineResult:
    """Run the whole reference pipeline for ``cfg``; outputs go below ``project_dir``.

    ``stop_after="split"`` or ``"train"`` runs the stages up to that one into the stage
    cache (and, for ``train``, MLflow) and returns a partial result: the tasks of an
    orchestrator (Kubeflow) that split the pipeline into steps sharing the project folder.
    """
    if stop_after not in (None, "split", "train"):
        raise ValueError(f"stop_after={stop_after!r}: use None, 'split' or 'train'")
    if cfg.notify.channels and stop_after is None:
        from wxops.notify import check_channels

        check_channels(cfg.notify)  # a missing secret stops the run before it trains
    from wxops import tracking
    from wxops.data.lineage import digest_file
    from wxops.data.sources import default_tmy3_path
    from wxops.errors import DataSourceError

    started = time.perf_counter()
    report = reporter or SilentReporter()
    paths = project_paths(project_dir)
    cache = StageCache(paths["cache"], enabled=use_cache)
    uri = tracking.resolve_tracking_uri(cfg.tracking.uri, project_dir)

    from wxops.data.remote import fetch_data, fetch_nwp

    downloads: list[Any] = []
    if cfg.data.is_nwp:
        from wxops.data.nwp_table import nwp_reference_column, nwp_sources

        assert cfg.data.obs is not None and cfg.data.nwp is not None
        raw_path = cfg.data.obs.path
        local_nwp, downloads = fetch_nwp(cfg.data, progress=report.transfer)
        if downloads:  # every later stage reads the cached copies
            cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={
                "nwp": cfg.data.nwp.model_copy(update={"paths": local_nwp})})})
        _, raw_digest = nwp_sources(cfg.data)
        if cfg.verify.nwp_column is None and cfg.features.target in _nwp_names(cfg):
            cfg = cfg.model_copy(update={"verify": cfg.verify.model_copy(
                update={"nwp_column": nwp_reference_column(cfg.features.target)})})
    elif (fetched := fetch_data(cfg.data, progress=report.transfer)) is not None:
        raw_path, raw_digest, downloads = fetched.path, fetched.sha256, [fetched]
    else:
        raw_path = cfg.data.path if cfg.data.path is not None else default_tmy3_path()
        if not raw_path.exists():
            raise DataSourceError(f"{raw_path}: data file not found (data.path in the config)")
        raw_digest = digest_file(raw_path)
    from wxops.stages import DATA_STAGES

    codes = {stage.name: code_version("wxops.stages", *stage.code) for stage in DATA_STAGES}
    codes |= {stage: code_version(*mods) for stage, mods in _STAGE_CODE.items()}
    whole_key = make_key(
        raw_digest, section_hash(cfg), *codes.values(), uri,
    )
    replay = cache.get("pipeline", whole_key)
    if replay is not None and _store_present(uri):
        result: PipelineResult = replay
        result.fully_cached = True
        result.cached_stages = ["ingest", "features", "split", "train", "register"]
        result.wall_seconds = time.perf_counter() - started
        for stage in result.cached_stages:
            report.skip(stage, "unchanged (cached)")
        return result

    with contextlib.ExitStack() as stack:
        executor = _LazyExecutor(cfg, stack, project_dir)
        return _run_stages(cfg, project_dir, cache, uri, raw_path, raw_digest, codes, whole_key,
                           report, started, executor, [d.lineage() for d in downloads], stop_after)


def _source_label(cfg: WxopsConfig) -> str:
    """``tmy3``, ``table``... or ``nwp-netcdf`` (NWP at stations) for lineage and params."""
    return f"nwp-{cfg.data.nwp.source}" if cfg.data.nwp is not None else cfg.data.source


def _nwp_names(cfg: WxopsConfig) -> list[str]:
    """NWP variables under their wxops names (after ``data.nwp.columns``)."""
    nwp = cfg.data.nwp
    return [] if nwp is None else [nwp.columns.get(v, v) for v in nwp.variables]


class _LazyExecutor:
    """Opens the configured executor on first use (a fully cached run starts no cluster)."""

    def __init__(self, cfg: WxopsConfig, stack: contextlib.ExitStack, project_dir: Path | None = None) -> None:
        self._cfg, self._stack, self._project_dir = cfg, stack, project_dir
        self._executor: Any = None

    def get(self) -> Any:
        if self._executor is None:
            from wxops.execution import open_executor

            self._executor = self._stack.enter_context(open_executor(self._cfg.execution, self._project_dir))
        return self._executor


def _store_present(uri: str) -> bool:
    """A cached record is only valid while its SQLite store still exists."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).exists() or Path(
            "/" + uri.removeprefix("sqlite:////")
        ).exists()
    return True


def _run_stages(
    cfg: WxopsConfig,
    project_dir: Path,
    cache: StageCache,
    uri: str,
    raw_path: Path,
    raw_digest: str,
    codes: dict[str, str],
    whole_key: str,
    report: Reporter,
    started: float,
    executor: _LazyExecutor,
    downloads: list[dict[str, Any]] | None = None,
    stop_after: str | None = None,
) -> PipelineResult:
    """The wiring: data stages into ``values``, then one MLflow pipeline run that trains,
    selects and registers."""
    from wxops import tracking
    from wxops.data.lineage import git_state
    from wxops.outbox import default_outbox
    from wxops.stages import DATA_STAGES, run_stage

    cached: list[str] = []
    values: dict[str, Any] = {"raw_digest": raw_digest}
    for stage in DATA_STAGES:
        cfg, hit = run_stage(stage, cfg, values, cache=cache, code=codes[stage.name], report=report,
                             project_dir=project_dir, map_fn=lambda fn, tasks: executor.get().map(fn, tasks))
        if hit:
            cached.append(stage.name)
    if stop_after == "split":
        return _partial(cfg, uri, project_dir, cached, started, "")

    tracking.connect(uri, outbox=default_outbox(project_dir), secrets=cfg.tracking.secrets)
    exp_id = tracking.ensure_experiment(
        cfg.tracking.experiment, tracking.default_artifact_root(uri, project_dir)
    )
    config_hash = section_hash(cfg)
    git = git_state(project_dir)
    out_dir = project_paths(project_dir)["out"]
    out_dir.mkdir(parents=True, exist_ok=True)
    source = _Source(raw_path, raw_digest, cfg.data.url or str(raw_path), downloads or [])
    table, split, split_digests = values["table"], values["split"], values["split_digests"]

    with tracking.start_run(exp_id, "pipeline", tags={
        "wxops.kind": "pipeline", "wxops.config_hash": config_hash,
        "wxops.data_sha256": raw_digest, "wxops.git_commit": str(git["commit"]),
        "wxops.git_dirty": str(git["dirty"]),
    }) as parent_id:
        lineage = _lineage(cfg, values, source, git, codes)
        _log_pipeline_inputs(cfg, values, source, lineage, out_dir)
        stored = _store_release_data(cfg, values["obs"], table, split)
        results, logged = _train_all(cfg, table, split, split_digests, codes, cache, uri,
                                     exp_id, parent_id, report, cached, executor,
                                     project_dir / ".wxops" / "tasks")
        if stop_after == "train":
            tracking.set_tags({"wxops.partial": "train"})
            partial = _partial(cfg, uri, project_dir, cached, started, parent_id)
            partial.metrics = {name: res.metrics for name, res in results.items()}
            return partial
        best, selection_note, probability_lines = _select(cfg, results, logged, table, split, out_dir,
                                                          report)
        with report.stage("register"):
            registration, release = _register(cfg, project_dir, cache, uri, logged[best], best,
                                              parent_id, source, split_digests, git, stored, report)
        tracking.set_tags({"wxops.registered_version": registration.version})
        prob_best, prob_note = _choose_probability(cfg, results)
        prob_registration, prob_release = None, None
        if prob_best is not None and cfg.tracking.probability_model is not None:
            report.info(prob_note)
            tracking.set_tags({"wxops.best_probability_config": prob_best,
                               "wxops.probability_selection": prob_note[:4000]})
            with report.stage(f"register {cfg.tracking.probability_model}"):
                prob_registration, prob_release = _register(
                    cfg, project_dir, cache, uri, logged[prob_best], prob_best, parent_id, source,
                    split_digests, git, stored, report, model=cfg.tracking.probability_model)
            tracking.set_tags({"wxops.probability_version": prob_registration.version})

    result = PipelineResult(
        run_id=parent_id, tracking_uri=uri, experiment=cfg.tracking.experiment,
        registered_model=registration.name, version=registration.version,
        became_champion=registration.became_champion, best=best,
        metrics={name: res.metrics for name, res in results.items()},
        out_dir=str(out_dir), cached_stages=cached,
        wall_seconds=time.perf_counter() - started, selection=selection_note,
    )
    if release is not None:
        result.gate_passed = release.gate_passed
        result.release_message = release.message
        result.report = release.report
        result.summary = release.summary
    result.summary = (*result.summary, *probability_lines)
    if prob_registration is not None:
        result.probability_model = prob_registration.name
        result.probability_version = prob_registration.version
        result.probability_best = prob_best or ""
        result.probability_champion = prob_registration.became_champion
        if prob_release is not None:
            result.probability_gate_passed = prob_release.gate_passed
            result.probability_message = prob_release.message
            result.summary = (*result.summary, *prob_release.summary)
    (out_dir / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
    if not tracking.is_offline():  # a rerun after `wxops sync` must talk to the server
        cache.put("pipeline", whole_key, result)
    return result


@dataclass(frozen=True)
class _Source:
    """The raw data a run read: the local file, its digest, the name it is logged under."""

    path: Path
    sha256: str
    name: str
    downloads: list[dict[str, Any]]


def _lineage(cfg: WxopsConfig, values: dict[str, Any], source: _Source, git: dict[str, Any],
             codes: dict[str, str]) -> dict[str, Any]:
    """``lineage.json``: what the run read, what each data stage made of it, with what code."""
    from wxops.data.lineage import package_versions

    obs, table, split = values["obs"], values["table"], values["split"]
    split_digests = values["split_digests"]
    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": {
            "type": _source_label(cfg),
            "path": str(source.path),
            "sha256": source.sha256,
            "rows": values["raw_rows"],
            **({"url": cfg.data.url} if cfg.data.url else {}),
            **({"downloads": source.downloads} if source.downloads else {}),
        },
        "qc": values["qc"].to_dict(),
        "stages": {
            "ingest": {"sha256": values["obs_digest"], "rows": len(obs),
                       "time_range": [str(obs["time"].min()), str(obs["time"].max())]},
            "features": {"sha256": values["table_digest"], "rows": len(table.frame),
                         "inputs": table.inputs, "notes": table.notes},
            "split": {"sha256": split_digests, "blocks": split.assignment,
                      "rows_in_gaps": split.rows_in_gaps,
                      "rows": {n: len(getattr(split, n)) for n in split_digests}},
        },
        "git": git,
        "packages": package_versions(),
        "seed": cfg.seed,
        "config_hash": section_hash(cfg),
        "code_versions": codes,
    }


def _log_pipeline_inputs(cfg: WxopsConfig, values: dict[str, Any], source: _Source,
                         lineage: dict[str, Any], out_dir: Path) -> None:
    """Params, datasets, lineage and QC report of the pipeline run (and lineage.json)."""
    from wxops import tracking

    tracking.log_params({
        "seed": cfg.seed, "data.source": _source_label(cfg), "data.path": source.name,
        "features.target": cfg.features.target, "features.lead_time": cfg.features.lead_time,
        "features.predictors": cfg.features.predictors, "split.block": cfg.split.block,
        "split.strategy": cfg.split.strategy, "n_configs": len(cfg.models),
        "config_hash": lineage["config_hash"],
    })
    tracking.log_dataset(values["obs"], source=source.name, name="observations",
                         digest=values["obs_digest"], context="ingest", targets=cfg.features.target)
    for name in ("train", "validation"):
        tracking.log_dataset(getattr(values["split"], name), source=source.name, name=name,
                             digest=values["split_digests"][name], context=name, targets="y")
    tracking.log_dict(lineage, "lineage.json")
    tracking.log_dict(lineage["qc"], "qc_report.json")
    (out_dir / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str))


def _register(cfg: WxopsConfig, project_dir: Path, cache: StageCache, uri: str,
              logged: dict[str, str], best: str, parent_id: str, source: _Source,
              split_digests: dict[str, str], git: dict[str, Any], stored: Any,
              report: Reporter, model: str | None = None) -> tuple[Any, _ReleaseOutcome | None]:
    """Register the best configuration's model and release it (gate, promote); a model
    registered before (same model, same store) is not registered again. ``model``: the
    registered model (default ``tracking.registered_model``; the probability model's
    versions go through the probability gate)."""
    from wxops import tracking

    name = model or cfg.tracking.registered_model
    reg_key = make_key(logged["model_uri"], name, uri)
    registration = cache.get("register", reg_key)
    if registration is not None:
        report.info(f"best {'probability ' if model else ''}model unchanged: already "
                    f"{name} version {registration.version}")
        return registration, None
    registration = tracking.register_model(
        logged["model_uri"], name, run_id=logged["run_id"],
        tags={"data_sha256": source.sha256, "training_data_sha256": split_digests["train"],
              "config_hash": section_hash(cfg), "git_commit": str(git["commit"]),
              "config_name": best, "pipeline_run_id": parent_id,
              **({"wxops.output": "probability"} if model else {}),
              **({"wxops.key_columns": "station,init_time,lead_time"} if cfg.data.is_nwp else {})},
        first_as_champion=False,
    )
    if tracking.is_offline():
        release = _ReleaseOutcome(registration, None, (
            f"version {registration.version} registered offline in the outbox as "
            "challenger: `wxops sync` registers it on the server and the gate decides there"))
    else:
        release = _release(cfg, project_dir, registration, stored, model)
    report.info(release.message if not model else f"{name}: {release.message}")
    if not tracking.is_offline():  # an outbox version is not the server's
        cache.put("register", reg_key, release.registration)
    return release.registration, release


def _select(cfg: WxopsConfig, results: dict[str, Any], logged: dict[str, dict[str, str]],
            table: Any, split: Any, out_dir: Path, report: Reporter) -> tuple[str, str, list[str]]:
    """Choose the configuration to register and record why, verify the probability
    models, write the loss curves and ``metrics.json``; returns the chosen name, the
    reason and the probability models' summary lines."""
    from wxops import tracking
    from wxops.verify.plots import plot_loss_curves

    metrics = {name: res.metrics for name, res in results.items()}
    selection = cfg.tracking.selection_metric
    # probability models are verified by their own scores below, not selected by rmse
    deterministic = {n: r for n, r in results.items() if n not in _probability_names(cfg)}
    best, selection_note = _choose(cfg, deterministic, {n: metrics[n] for n in deterministic},
                                   logged, table, split)
    report.info(selection_note)
    tracking.log_metrics({f"{n}.{selection}": metrics[n][selection] for n in deterministic})
    probability_lines = _verify_probability_models(cfg, results, logged, table, split, out_dir)
    tracking.set_tags({"wxops.best_config": best, "wxops.selection": selection_note[:4000]})
    curves = plot_loss_curves({n: r.history for n, r in results.items()}, out_dir / "loss_curves.png",
                              types={m.name: m.type for m in cfg.models})
    (out_dir / "metrics.json").write_text(json.dumps(metrics_document(best, selection, results), indent=2))
    tracking.log_artifact(curves)
    tracking.log_artifact(out_dir / "metrics.json")
    return best, selection_note, probability_lines


def _choose(cfg: WxopsConfig, results: dict[str, Any], metrics: dict[str, dict[str, float]],
            logged: dict[str, dict[str, str]], table: Any, split: Any) -> tuple[str, str]:
    """The configuration to register: the gate's reference rules on validation decide,
    then the selection metric (``wxops.release.select``); NWP tables: the metric alone."""
    from wxops import tracking

    selection = cfg.tracking.selection_metric
    if cfg.data.is_nwp or split.validation.empty:
        best = min(metrics, key=lambda n: metrics[n][selection])
        return best, f"{best} registered: best {selection}"
    from wxops.release.select import select_configuration

    x_val = _input_example_frame(split.validation[table.inputs])
    predictions = {n: r.model.predict(x_val) for n, r in results.items()}
    chosen = select_configuration(cfg, predictions, metrics, train=split.train,
                                  validation=split.validation)
    for name, scores in chosen.scores.items():
        if scores and name in logged:
            tracking.log_metrics_to_run(logged[name]["run_id"], scores)
    return chosen.best, chosen.message


def _choose_probability(cfg: WxopsConfig, results: dict[str, Any]) -> tuple[str | None, str]:
    """The probability configuration to register: the highest validation Brier skill
    (``val_bss_<t>``, averaged over its thresholds; never the test block), first listed on
    a tie. None when no probability configuration or ``tracking.probability_model: null``."""
    import math

    names = [n for n in results if n in _probability_names(cfg)]
    if not names or cfg.tracking.probability_model is None:
        return None, ""

    def skill(name: str) -> float:
        values = [float(v) for k, v in results[name].metrics.items()
                  if k.startswith("val_bss_") and math.isfinite(float(v))]
        return sum(values) / len(values) if values else -math.inf

    best = max(names, key=skill)
    others = ", ".join(f"{n} {skill(n):+.3f}" for n in names)
    return best, (f"{best} -> {cfg.tracking.probability_model}: best mean validation Brier "
                  f"skill over its thresholds ({others})")


def _probability_names(cfg: WxopsConfig) -> set[str]:
    from wxops.models.types import probability_types

    return {m.name for m in cfg.models if m.type in probability_types()}


def _verify_probability_models(cfg: WxopsConfig, results: dict[str, Any],
                               logged: dict[str, dict[str, str]], table: Any, split: Any,
                               out_dir: Path) -> list[str]:
    """Verify each probability model on the test block against the event frequency of
    the non-test rows; log the scores to its run and the pipeline run, write
    ``wxops-out/probability-<name>.json``; return the summary lines (BSS with n events)."""
    import pandas as pd

    from wxops import tracking
    from wxops.features import TARGET
    from wxops.verify.probabilistic import climatological_frequency, verify_probabilities

    lines: list[str] = []
    names = [n for n in results if n in _probability_names(cfg)]
    if not names or split.test.empty:
        return lines
    non_test = pd.concat([split.train[TARGET], split.validation[TARGET]])
    valid = split.test["time"] + pd.Timedelta(hours=cfg.features.lead_time or 0)
    block = (split.test["block"] if "block" in split.test.columns and cfg.split.block == "month"
             else None)
    for name in names:
        estimator = results[name].model.named_steps["model"]
        prob = results[name].model.predict(_input_example_frame(split.test[table.inputs]))
        thresholds = list(estimator.thresholds_)
        probabilities = {t: prob[c].to_numpy() for t, c in zip(thresholds, estimator.columns_,
                                                                strict=True)}
        verification = verify_probabilities(
            probabilities, split.test[TARGET].to_numpy(dtype=float),
            climatology=climatological_frequency(non_test, thresholds, estimator.event),
            valid_time=valid, event=estimator.event, block=block)
        from wxops.release.probability_gate import evaluate_probability_gate

        gate = evaluate_probability_gate(
            probabilities, split.test[TARGET].to_numpy(dtype=float),
            climatology=verification.scores["climatology"].to_dict(), cfg=cfg.gate.probability,
            event=estimator.event, lead_time=cfg.features.lead_time or 1)
        scores = {**verification.metrics(), "test_gate_passed": float(gate.passed)}
        if name in logged:
            tracking.log_metrics_to_run(logged[name]["run_id"], scores)
        tracking.log_metrics({f"{name}.{k}": v for k, v in scores.items()})
        path = out_dir / f"probability-{name}.json"
        path.write_text(json.dumps({**verification.to_dict(), "gate": gate.to_dict()}, indent=2))
        tracking.log_artifact(path)
        from wxops.verify.probability_report import write_probability_report

        page = write_probability_report(verification, out_dir / f"probability-{name}",
                                        title=f"{name}: probability forecasts", gate=gate)
        for file in sorted(page.parent.iterdir()):
            tracking.log_artifact(file, f"probability-{name}")
        lines += [*verification.summary(f"{name} (test block)"), f"{name} {gate.summary()}",
                  f"{name} probability report: {page}"]
    return lines


def _partial(cfg: WxopsConfig, uri: str, project_dir: Path, cached: list[str], started: float,
             run_id: str) -> PipelineResult:
    """The result of a run stopped early (``stop_after``): nothing registered."""
    return PipelineResult(
        run_id=run_id, tracking_uri=uri, experiment=cfg.tracking.experiment,
        registered_model=cfg.tracking.registered_model, version="", became_champion=False, best="",
        metrics={}, out_dir=str(project_paths(project_dir)["out"]), cached_stages=cached,
        wall_seconds=time.perf_counter() - started)


def metrics_document(best: str, selection: str, results: dict[str, Any]) -> dict[str, Any]:
    """The content of ``metrics.json``: what each configuration was and how it learned.

    ``configs`` keeps the final metrics (what scripts compared before); ``details`` adds,
    per configuration, the hyperparameters and the per-epoch train/validation losses so
    the JSON export alone answers "which settings, and did it still improve?".
    """
    return {
        "best": best,
        "selection_metric": selection,
        "configs": {name: res.metrics for name, res in results.items()},
        "details": {
            name: {
                "hyperparameters": res.params,
                "metrics": res.metrics,
                "losses": [{"epoch": i, "train_loss": p.get("train_loss"), "val_loss": p.get("val_loss")}
                           for i, p in enumerate(res.history)],
            }
            for name, res in results.items()
        },
    }


def _train_all(
    cfg: WxopsConfig,
    table: Any,
    split: Any,
    split_digests: dict[str, str],
    codes: dict[str, str],
    cache: StageCache,
    uri: str,
    exp_id: str,
    parent_id: str,
    report: Reporter,
    cached: list[str],
    executor: _LazyExecutor,
    task_dir: Path,
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Train each configuration as a task of the executor, in its own nested MLflow run.

    A configuration unchanged since an earlier run is reused from the cache and only
    re-logged here; the others become :class:`~wxops.models.task.TrainTask` s that read
    the split from Parquet files, so a Dask worker gets a path, not a data frame.
    """
    from wxops import tracking
    from wxops.models.task import TrainTask, run_train_task

    results: dict[str, Any] = {}
    logged: dict[str, dict[str, str]] = {}
    todo: list[tuple[Any, str, str]] = []
    reused = 0
    example = _input_example(split.train[table.inputs])
    for model_cfg in cfg.models:
        train_key = make_key(split_digests["train"], split_digests["validation"],
                             section_hash(model_cfg), ",".join(cfg.features.derived),
                             str(cfg.seed), codes["train"])
        log_key = make_key(train_key, uri, exp_id)
        trained = cache.get("train", train_key)
        previous = cache.get("logged", log_key)
        if trained is None:
            todo.append((model_cfg, train_key, log_key))
            continue
        tags = {"wxops.kind": "config", "wxops.train_key": train_key}
        if previous is not None:
            tags["wxops.reused_from_run"] = previous["run_id"]
        with tracking.start_run(exp_id, model_cfg.name, parent_run_id=parent_id,
                                tags=tags) as run_id:
            reused += 1
            report.skip(f"train {model_cfg.name}", "unchanged (cached)")
            tracking.log_history(run_id, trained.history)
            tracking.log_params(trained.params)
            tracking.log_metrics(trained.metrics)
            if previous is None:
                model_uri = tracking.log_model(
                    trained.model, "model", input_example=example,
                    pip_requirements=_requirements(model_cfg.type),
                    code_paths=[_package_dir()],
                )
                previous = {"run_id": run_id, "model_uri": model_uri}
                if not tracking.is_offline():  # an outbox model id means nothing to the server
                    cache.put("logged", log_key, previous)
            else:
                tracking.set_tags({"wxops.model_uri": previous["model_uri"]})
        results[model_cfg.name] = trained
        logged[model_cfg.name] = previous
    if todo:
        paths = _write_split(split, table.inputs, split_digests, task_dir)
        tasks = [TrainTask(
            model=model_cfg, inputs=list(table.inputs), target=table.target,
            lead_time=table.lead_time, train_path=paths["train"],
            validation_path=paths["validation"], derived=list(cfg.features.derived),
            seed=cfg.seed, tracking_uri=uri, experiment_id=exp_id, parent_run_id=parent_id,
            pip_requirements=_requirements(model_cfg.type), code_paths=[_package_dir()],
            tags={"wxops.kind": "config", "wxops.train_key": train_key},
            secrets=tuple(cfg.tracking.secrets),
            system_metrics=cfg.tracking.system_metrics_interval if cfg.tracking.system_metrics else None,
        ) for model_cfg, train_key, _ in todo]
        runner = executor.get()
        if runner.in_process:
            outcomes = [run_train_task(task, report.epochs(task.model.name, getattr(task.model, "epochs", 1)))
                        for task in tasks]
        else:
            with report.stage(f"train {len(tasks)} configurations on Dask"):
                try:
                    outcomes = runner.map(run_train_task, tasks)
                finally:
                    tracking.fail_unfinished_children(parent_id)
        for (model_cfg, train_key, log_key), outcome in zip(todo, outcomes, strict=True):
            cache.put("train", train_key, outcome.result)
            previous = {"run_id": outcome.run_id, "model_uri": outcome.model_uri}
            if not tracking.is_offline():  # an outbox model id means nothing to the server
                cache.put("logged", log_key, previous)
            results[model_cfg.name] = outcome.result
            logged[model_cfg.name] = previous
    if reused == len(cfg.models):
        cached.append("train")
    results = {m.name: results[m.name] for m in cfg.models}
    return results, {m.name: logged[m.name] for m in cfg.models}


def _write_split(split: Any, inputs: list[str], digests: dict[str, str], task_dir: Path) -> dict[str, str]:
    """Train and validation tables as Parquet files named by their digest (written once)."""
    from wxops.features import TARGET

    # The columns written depend on the inputs as well as the rows (same split, new inputs).
    folder = task_dir / make_key(digests["train"], ",".join(inputs))[:16]
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    columns = list(dict.fromkeys([*inputs, TARGET]))
    for name in ("train", "validation"):
        path = folder / f"{name}-{digests[name][:16]}.parquet"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            getattr(split, name)[columns].to_parquet(tmp, index=False)
            tmp.replace(path)
        paths[name] = str(path)
    return paths


def _input_example_frame(frame: Any) -> Any:
    out = frame.copy()
    if "time" in out.columns:
        out["time"] = out["time"].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


@dataclass
class _ReleaseOutcome:
    registration: Any
    gate_passed: bool | None
    message: str
    report: str = ""
    summary: tuple[str, ...] = ()


def _store_release_data(cfg: WxopsConfig, obs: Any, table: Any, split: Any) -> Any:
    """Store the test table (and train/validation, the observation history) with the run.

    Verify, promote, the replay and the monitor read these back by digest instead of
    recomputing ingest, QC, features and split (``wxops.release.stored``).
    """
    import tempfile

    from wxops import tracking
    from wxops.release.stored import RELEASE_DIR, release_data, write_release_data

    stored = release_data(obs, table, split, kind="nwp" if cfg.data.is_nwp else "tabular",
                          nwp_column=cfg.verify.nwp_column)
    with tempfile.TemporaryDirectory(prefix="wxops-release-") as tmp:
        for path in write_release_data(stored, Path(tmp)):
            tracking.log_artifact(path, RELEASE_DIR)
    return stored


def _release(cfg: WxopsConfig, project_dir: Path, registration: Any, stored: Any,
             model: str | None = None) -> _ReleaseOutcome:
    """Verify the new version and promote it to champion only if the gate passes."""
    from wxops.errors import ArtifactIntegrityError, ReleaseError, StoredDataError, VerificationError
    from wxops.release.cycle import promote_version
    from wxops.tracking import Registration

    try:
        promo = promote_version(cfg, project_dir=project_dir, version=registration.version,
                                reason=f"wxops run: new best {'probability ' if model else ''}"
                                       "configuration", data=stored, model=model)
    except (ReleaseError, StoredDataError, VerificationError, ArtifactIntegrityError) as exc:
        return _ReleaseOutcome(registration, False,
                               f"version {registration.version} stays challenger: {exc}")
    evaluation = promo.evaluation
    return _ReleaseOutcome(
        Registration(registration.name, registration.version, promo.promoted),
        evaluation.passed if evaluation else None,
        promo.message,
        str(evaluation.report) if evaluation else "",
        tuple(evaluation.summary(cfg.verify.thresholds)) if evaluation else (),
    )


def _input_example(frame: Any) -> Any:
    example = frame.head(5).copy()
    if "time" in example.columns:
        example["time"] = example["time"].dt.tz_convert("UTC").dt.tz_localize(None)
    # float32 and float64 inputs give one signature type ("double")
    floats = example.select_dtypes("float32").columns
    return example.astype(dict.fromkeys(floats, "float64")) if len(floats) else example


def _package_dir() -> str:
    return str(Path(__file__).resolve().parent)


def _requirements(type_name: str) -> list[str]:
    """Pinned pip requirements of a logged model of this type (the registry's packages)."""
    from wxops.data.lineage import package_versions
    from wxops.models.types import model_type

    wanted = model_type(type_name).pip_packages
    versions = package_versions(wanted)
    return [f"{n}=={versions[n]}" for n in wanted if versions.get(n)]
