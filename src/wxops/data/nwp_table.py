"""The NWP training table: forecasts at stations joined with the observation at valid time.

One row per (station, init_time, lead_time) with ``valid_time = init_time + lead_time``.
It is built per station chunk (:func:`build_chunk`), each chunk streaming through the NWP
files one at a time and appending to its own Parquet partition, so the whole table never
has to sit in one process: that is what a Dask task runs. Tasks get paths and small
configs, never data frames, so shipping them costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wxops.errors import DataQualityError, FeatureError, NWPDataError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from wxops.config import (
        DataConfig,
        FeaturesConfig,
        NWPConfig,
        QCConfig,
        SplitConfig,
        StationObsConfig,
        WxopsConfig,
    )
    from wxops.features import FeatureTable

#: Key columns of the table, ahead of the variables.
KEYS: tuple[str, ...] = ("station", "init_time", "lead_time", "valid_time")


def nwp_reference_column(target: str) -> str:
    """Column of the raw NWP forecast of ``target`` (the ``nwp`` reference forecast)."""
    return f"nwp_{target}"


@dataclass(frozen=True)
class ChunkTask:
    """Everything one preprocessing task needs: paths and small configs only."""

    index: int
    files: list[str]
    stations: list[dict[str, Any]]
    nwp: NWPConfig
    obs: StationObsConfig
    target: str
    out_path: str
    qc: QCConfig | None = None
    """``data.qc``: the observations are checked by the same rules as tabular data."""


@dataclass(frozen=True)
class ChunkResult:
    """What one task wrote."""

    path: str
    rows: int
    nbytes: int
    """In-memory size of the rows written (pandas deep memory usage)."""
    obs_rows: int
    obs_dropped: dict[str, int] = field(default_factory=dict)
    """Observations each QC rule flagged (a row may count under several rules)."""
    rows_without_obs: int = 0
    obs_removed: int = 0
    """Observations QC removed (each once)."""


@dataclass(frozen=True)
class NWPQCReport:
    """Counts of what quality control and the join removed, so nothing goes silently."""

    obs_rows: int
    obs_dropped: dict[str, int]
    """Observations each QC rule flagged (a row may count under several rules)."""
    rows_without_obs: int
    rows: int
    obs_removed: int = 0
    """Observations QC removed (each once)."""

    def to_dict(self) -> dict[str, Any]:
        return {"obs_rows": self.obs_rows, "obs_dropped": self.obs_dropped,
                "obs_removed": self.obs_removed,
                "forecast_rows_without_observation": self.rows_without_obs, "rows": self.rows}


def plan_chunks(files: list[Path], stations: pd.DataFrame, nwp: NWPConfig, obs: StationObsConfig,
                target: str, out_dir: Path, qc: QCConfig | None = None) -> list[ChunkTask]:
    """One task per ``nwp.chunk_stations`` stations and ``nwp.chunk_files`` files."""
    records = stations.to_dict("records")
    size = nwp.chunk_stations
    per_task = nwp.chunk_files or max(1, len(files))
    groups = [[str(f) for f in files[k:k + per_task]] for k in range(0, len(files), per_task)]
    tasks: list[ChunkTask] = []
    for start in range(0, len(records), size):
        for group in groups:
            i = len(tasks)
            tasks.append(ChunkTask(i, group, records[start:start + size], nwp, obs, target,
                                   str(out_dir / f"part-{i:05d}.parquet"), qc))
    return tasks


def read_station_obs(cfg: StationObsConfig, station_ids: list[str], target: str,
                     between: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> pd.DataFrame:
    """Observations of ``target`` at the given stations: columns ``station, valid_time, obs``.

    ``between``: only times in this closed interval (Parquet reads only those row groups).
    """
    import pandas as pd

    path = cfg.path
    if not path.exists():
        raise NWPDataError(f"{path}: observation file not found (data.obs.path)")
    source_target = next((k for k, v in cfg.columns.items() if v == target), target)
    wanted = [cfg.station_column, cfg.time_column, source_target]
    try:
        if path.suffix.lower() == ".parquet":
            filters: list[Any] = [(cfg.station_column, "in", station_ids)]
            if between is not None:
                low, high = _like_column(path, cfg.time_column, between)
                filters += [(cfg.time_column, ">=", low), (cfg.time_column, "<=", high)]
            frame = pd.read_parquet(path, columns=wanted, filters=filters)
        else:
            frame = pd.read_csv(path, usecols=wanted, dtype={cfg.station_column: str})
    except (OSError, ValueError, KeyError, pd.errors.ParserError) as exc:
        raise NWPDataError(f"{path}: cannot read columns {wanted} of the observations ({exc}); "
                           "check data.obs (station_column, time_column, columns)") from exc
    frame = frame.rename(columns={cfg.station_column: "station", cfg.time_column: "valid_time",
                                  source_target: "obs"})
    frame["station"] = frame["station"].astype(str)
    frame = frame[frame["station"].isin(station_ids)]
    frame["valid_time"] = pd.to_datetime(frame["valid_time"], utc=True)
    if between is not None:
        frame = frame[(frame["valid_time"] >= between[0]) & (frame["valid_time"] <= between[1])]
    return frame.reset_index(drop=True)


def _like_column(path: Path, column: str, between: tuple[pd.Timestamp, pd.Timestamp]) -> tuple[Any, Any]:
    """The UTC interval as the Parquet column stores time: tz-aware, or naive UTC."""
    import pyarrow.parquet as pq

    field_type = pq.read_schema(path).field(column).type
    if getattr(field_type, "tz", None):
        return between
    return tuple(t.tz_convert("UTC").tz_localize(None) for t in between)  # type: ignore[return-value]


def clean_obs(obs: pd.DataFrame, target: str, qc: QCConfig | None = None
              ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The QC rules of :data:`wxops.data.qc.QC_TABLE` on station observations of ``target``,
    read from ``qc:`` as for tabular data; returns the kept rows and the rows each rule
    flagged.

    A repeated time is one repeated at the same station; a stuck sensor is a run at one
    station (within the valid times of one NWP file). ``qc.action: drop`` removes every
    flagged row; ``keep`` keeps those whose value is still usable (out of range, stuck)
    with their rules in ``qc_flags``, since a missing or repeated observation cannot be
    joined.
    """
    import pandas as pd

    from wxops.config import QCConfig
    from wxops.data.qc import QC_TABLE, ROW_RULES, flag_times, flag_values

    qc = qc or QCConfig()
    obs = obs.reset_index(drop=True)
    values = pd.to_numeric(obs["obs"], errors="coerce")
    values, hits = flag_values(values, target, obs["valid_time"], qc, groups=obs["station"])
    hits.update(flag_times(obs["valid_time"], keys=obs[["station"]]))
    flags = pd.DataFrame({r: hits[r] for r in ROW_RULES if r in hits})
    flagged = flags.any(axis=1)
    dropped = {r: int(flags[r].sum()) for r in flags.columns}
    out = obs.assign(obs=values)
    if qc.action == "drop":
        return out[~flagged].reset_index(drop=True), dropped
    unusable = flags[[r for r in flags.columns if not QC_TABLE[r].usable]].any(axis=1)
    out["qc_flags"] = flags.apply(lambda row: ",".join(row.index[row.to_numpy()]), axis=1)
    return out[~unusable].reset_index(drop=True), dropped


def join_observations(forecasts: pd.DataFrame, obs: pd.DataFrame, *, target: str,
                      nwp_target: str | None) -> pd.DataFrame:
    """Forecast rows with the observation at their valid time as ``y`` (rows without one go).

    ``nwp_target``: the forecast column of the target itself, copied to
    ``nwp_<target>`` as the raw-NWP reference.
    """
    from wxops.features import TARGET

    joined = forecasts.merge(obs.rename(columns={"obs": TARGET}), on=["station", "valid_time"],
                             how="inner", validate="many_to_one")
    if nwp_target is not None:
        joined[nwp_reference_column(target)] = joined[nwp_target]
    return joined


def build_chunk(task: ChunkTask) -> ChunkResult:
    """Extract one station chunk from every file, join observations, write one partition.

    The partition is written to a temporary name and renamed at the end, so a failed or
    killed task leaves no half-written partition behind.
    """
    import os

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wxops.data.nwp import extract_file

    stations = pd.DataFrame(task.stations)
    stations["id"] = stations["id"].astype(str)
    ids = list(stations["id"])
    nwp_target = next((v for v in task.nwp.variables if task.nwp.columns.get(v, v) == task.target), None)
    if nwp_target is not None:
        nwp_target = task.nwp.columns.get(nwp_target, nwp_target)
    out = Path(task.out_path)
    tmp = out.with_suffix(".tmp")
    rows = nbytes = without = obs_rows = removed = 0
    dropped: dict[str, int] = {}
    writer: pq.ParquetWriter | None = None
    try:
        for path in task.files:
            forecasts = extract_file(Path(path), task.nwp, stations)
            # Observations of this file's valid times only: memory stays one file's worth.
            span = (forecasts["valid_time"].min(), forecasts["valid_time"].max())
            raw = read_station_obs(task.obs, ids, task.target, span)
            obs, file_dropped = clean_obs(raw, task.target, task.qc)
            obs_rows += len(raw)
            removed += len(raw) - len(obs)
            for key, value in file_dropped.items():
                dropped[key] = dropped.get(key, 0) + value
            joined = join_observations(forecasts, obs, target=task.target, nwp_target=nwp_target)
            without += len(forecasts) - len(joined)
            if joined.empty:
                continue
            table = pa.Table.from_pandas(joined, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += len(joined)
            nbytes += int(joined.memory_usage(deep=True).sum())
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if writer is None:
        raise DataQualityError(
            f"stations {ids[:5]}{'...' if len(ids) > 5 else ''}: no forecast has an observation "
            f"of '{task.target}' at its valid time; check data.obs (station ids, times in UTC)")
    writer.close()
    os.replace(tmp, out)
    return ChunkResult(str(out), rows, nbytes, obs_rows, dropped, without, removed)


def summarise(results: list[ChunkResult]) -> NWPQCReport:
    """One QC report over all chunks."""
    dropped: dict[str, int] = {}
    for r in results:
        for k, v in r.obs_dropped.items():
            dropped[k] = dropped.get(k, 0) + v
    return NWPQCReport(sum(r.obs_rows for r in results), dropped,
                       sum(r.rows_without_obs for r in results), sum(r.rows for r in results),
                       sum(r.obs_removed for r in results))


def check_drop_share(report: NWPQCReport, qc: QCConfig, target: str) -> None:
    """Stop when QC flagged more than ``qc.max_drop_share`` of the observations, naming
    the rule that flagged most (as for tabular data)."""
    from wxops.data.qc import QC_TABLE

    flagged = report.obs_removed
    if not report.obs_rows or not report.obs_dropped or flagged <= qc.max_drop_share * report.obs_rows:
        return
    rule = max(report.obs_dropped, key=lambda r: report.obs_dropped[r])
    raise DataQualityError(
        f"QC removes {flagged} of {report.obs_rows} observations of '{target}' (data.obs); most by "
        f"rule {rule}: {report.obs_dropped[rule]} rows{QC_TABLE[rule].cause}; fix the data or the "
        "config (qc.ranges, qc.sentinels), or raise qc.max_drop_share if this is expected")


def read_partitions(results: list[ChunkResult]) -> pd.DataFrame:
    """The whole table from its partitions, in a stable order (station, init, lead)."""
    import pandas as pd

    frames = [pd.read_parquet(r.path) for r in sorted(results, key=lambda r: r.path)]
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["station", "init_time", "lead_time"], kind="stable").reset_index(drop=True)


def build_nwp_features(table: pd.DataFrame, cfg: FeaturesConfig, split: SplitConfig) -> FeatureTable:
    """The modelling table of NWP rows (a pure stage).

    ``time`` is the valid time (diurnal and seasonal features, climatology), ``block`` the
    init time's block, so splits block by init time; ``lead_time`` is an input.
    """
    from wxops.features import TARGET, FeatureTable
    from wxops.split import block_labels

    missing = sorted(set(cfg.predictors) - set(table.columns))
    if missing:
        raise FeatureError(f"the NWP table lacks predictors {missing}; they must be among "
                           "data.nwp.variables (after data.nwp.columns renames)")
    frame = table.copy()
    frame["time"] = frame["valid_time"]
    if "block" not in frame.columns:
        frame["block"] = block_labels(frame["init_time"], split.block)
    inputs = [*cfg.predictors, "lead_time"]
    if "cyclic_time" in cfg.derived:
        inputs = ["time", *inputs]
    if "station_onehot" in cfg.derived:
        inputs = [*inputs, "station"]  # encoded inside the model (MeteoFeatures)
    before = len(frame)
    frame = frame.dropna(subset=[c for c in inputs if c != "time"] + [TARGET]).reset_index(drop=True)
    dropped = before - len(frame)
    notes = [f"{dropped} rows without a complete input/target dropped"] if dropped else []
    if frame.empty:
        raise FeatureError("no NWP row has every input and an observation")
    if not np.isfinite(frame[TARGET].to_numpy(dtype=float)).all():
        raise DataQualityError("the joined target has non-finite values")
    return FeatureTable(frame, inputs, cfg.target, None, dropped, notes)


def nwp_sources(cfg: DataConfig) -> tuple[list[Path], str]:
    """The NWP files and one sha256 over them, the observations and the station list."""
    import hashlib

    from wxops.data.lineage import digest_file
    from wxops.data.nwp import expand_paths

    assert cfg.nwp is not None and cfg.obs is not None and cfg.stations is not None
    from wxops.data.remote import fetch_nwp

    local, _ = fetch_nwp(cfg)
    files = expand_paths(local)
    sha = hashlib.sha256()
    for path in [*files, cfg.obs.path, cfg.stations]:
        if not path.exists():
            raise NWPDataError(f"{path}: file not found (data.nwp, data.obs, data.stations)")
        sha.update(f"{path.name}:{digest_file(path)}\n".encode())
    return files, sha.hexdigest()


def ingest_nwp(cfg: WxopsConfig, files: list[Path], out_dir: Path,
               run_tasks: Callable[[Callable[[ChunkTask], ChunkResult], list[ChunkTask]], list[ChunkResult]],
               ) -> tuple[pd.DataFrame, NWPQCReport]:
    """Build every station chunk with ``run_tasks`` (an executor's map), then read the table.

    The table gets ``time`` (= valid time) and ``block`` (of the init time), so the
    pipeline's later stages and lineage treat it like any other table.
    """
    from wxops.data.nwp import read_stations
    from wxops.split import block_labels

    data = cfg.data
    assert data.nwp is not None and data.obs is not None and data.stations is not None
    stations = read_stations(data.stations)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("part-*"):
        stale.unlink()
    tasks = plan_chunks(files, stations, data.nwp, data.obs, cfg.features.target, out_dir,
                        data.qc)
    results = run_tasks(build_chunk, tasks)
    check_drop_share(summarise(results), data.qc, cfg.features.target)
    table = read_partitions(results)
    table["time"] = table["valid_time"]
    table["block"] = block_labels(table["init_time"], cfg.split.block)
    return table, summarise(results)
