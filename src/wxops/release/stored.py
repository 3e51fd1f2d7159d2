"""The tables a version was judged on, stored with its pipeline run and read back.

The pipeline writes them once, as Parquet files named by their digest under the run's
``release/`` artifact folder with a ``manifest.json``; ``wxops verify``, ``promote``, the
forecast-cycling replay and ``wxops monitor`` read them instead of re-running ingest,
QC, features and split, so a version is always judged on the rows it was tested on,
whatever the configuration or the raw data say today. One format for station tables
and NWP tables: ``kind`` says which, ``keys`` which columns identify a forecast.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from wxops import tracking
from wxops.errors import StoredDataError
from wxops.features import FeatureTable
from wxops.split import Split

#: Artifact folder of the pipeline run holding the tables.
RELEASE_DIR = "release"
MANIFEST = "manifest.json"
_FORMAT = 1
#: Columns identifying one forecast of an NWP (MOS) table.
NWP_KEYS: tuple[str, ...] = ("station", "init_time", "lead_time")


@dataclass
class TestData:
    """The observations, feature table and split a version is verified on.

    ``table.frame`` holds the test rows only when read back from storage; ``obs`` (the
    QC'd observation history the replay assembles inputs from) is empty for NWP tables,
    whose inputs are forecasts known at the init time.
    """

    obs: pd.DataFrame
    table: FeatureTable
    split: Split
    kind: str = "tabular"
    """``tabular`` (one row per time) or ``nwp`` (one row per station, init and lead time)."""
    nwp_column: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """Columns that identify one forecast (the join of candidate and champion rows)."""
        return list(NWP_KEYS) if self.kind == "nwp" else ["time"]


def release_data(obs: pd.DataFrame, table: FeatureTable, split: Split, *, kind: str,
                 nwp_column: str | None = None) -> TestData:
    """Bundle what the pipeline produced (a pure stage)."""
    history = obs if kind == "tabular" else obs.iloc[0:0]
    return TestData(history, table, split, kind, nwp_column)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_release_data(data: TestData, folder: Path) -> list[Path]:
    """Write the tables as digest-named Parquet files plus the manifest; return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = {"test": data.split.test, "train": data.split.train,
              "validation": data.split.validation}
    if data.kind == "tabular":
        frames["obs"] = data.obs
    files: dict[str, Any] = {}
    written = []
    for name, frame in frames.items():
        tmp = folder / f"{name}.tmp"
        frame.reset_index(drop=True).to_parquet(tmp, index=False)
        sha = _sha256(tmp)
        path = folder / f"{name}-{sha[:16]}.parquet"
        tmp.replace(path)
        files[name] = {"file": path.name, "sha256": sha, "rows": len(frame)}
        written.append(path)
    manifest = {
        "format": _FORMAT, "kind": data.kind, "inputs": list(data.table.inputs),
        "target": data.table.target, "lead_time": data.table.lead_time,
        "nwp_column": data.nwp_column, "assignment": data.split.assignment, "files": files,
    }
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, default=str))
    return [*written, path]


def read_release_data(folder: Path, *, what: str) -> TestData:
    """Read tables written by :func:`write_release_data`, checking each file's sha256.

    Raises:
        StoredDataError: the manifest or a table is missing or not the bytes recorded.
    """
    path = folder / MANIFEST
    if not path.is_file():
        raise StoredDataError(f"{what}: no {MANIFEST} in the stored release tables")
    manifest = json.loads(path.read_text())
    frames = {}
    for name, entry in manifest["files"].items():
        file = folder / entry["file"]
        if not file.is_file():
            raise StoredDataError(f"{what}: stored table {entry['file']} is missing")
        if _sha256(file) != entry["sha256"]:
            raise StoredDataError(f"{what}: stored table {entry['file']} does not match its "
                                  "recorded sha256 (damaged); recreate it with `wxops run "
                                  "--no-cache`")
        frames[name] = pd.read_parquet(file)
    kind = manifest["kind"]
    inputs = list(manifest["inputs"])
    lead = manifest.get("lead_time")
    test = frames["test"]
    table = FeatureTable(test, inputs, str(manifest["target"]), None if lead is None else int(lead))
    split = Split(frames["train"], frames["validation"], test, dict(manifest["assignment"]))
    obs = frames.get("obs", test.iloc[0:0])
    return TestData(obs, table, split, kind, manifest.get("nwp_column"))


def load_release_data(name: str, version: str) -> TestData:
    """The tables ``version`` was verified on, as its pipeline run stored them.

    Raises:
        StoredDataError: the run stored none (made before wxops stored them, or its
            artifacts were deleted), with the command that recreates them.
    """
    info = tracking.get_model_version(name, version)
    run = info["tags"].get("pipeline_run_id")
    with tempfile.TemporaryDirectory(prefix="wxops-stored-") as tmp:
        folder = tracking.download_run_folder(run, RELEASE_DIR, Path(tmp)) if run else None
        if folder is None:
            raise StoredDataError(
                f"{name} version {version} has no stored test table (its pipeline run "
                f"{run or '?'} was made before wxops stored them, or its artifacts were "
                f"deleted). Recreate it: check out git commit {info['tags'].get('git_commit', '?')}"
                f" and run `wxops run --no-cache` with the configuration that made it (config "
                f"hash {info['tags'].get('config_hash', '?')}); the new version carries its tables")
        return read_release_data(folder, what=f"{name} version {version}")


def champion_data(name: str, champion: str, candidate: TestData,
                   champion_inputs: list[str]) -> TestData:
    """The champion's own stored tables; the candidate's when it stored none but takes the
    same inputs (an old champion), else StoredDataError."""
    try:
        return load_release_data(name, champion)
    except StoredDataError:
        if champion_inputs == candidate.table.inputs:
            return candidate
        raise


def naive_time(frame: pd.DataFrame) -> pd.DataFrame:
    """``time`` as naive UTC, as the models were trained on."""
    out = frame.copy()
    if "time" in out.columns and getattr(out["time"].dt, "tz", None) is not None:
        out["time"] = out["time"].dt.tz_convert("UTC").dt.tz_localize(None)
    return out
