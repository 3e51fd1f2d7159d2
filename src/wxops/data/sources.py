"""Readers that turn an observation file into wxops' tidy table.

Every reader returns a DataFrame with a tz-aware UTC ``time`` column, one column per
variable under wxops' names (``t2m``, ``visibility``...; see :data:`wxops.data.qc.VARIABLES`)
and, where the source knows its own blocks, a ``block`` column. Readers only read and
rename: cleaning is :func:`wxops.data.qc.apply_qc`'s job.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from wxops.config import DataConfig
from wxops.errors import DataSourceError

#: TMY3 column -> wxops variable. Units stay as TMY3 gives them (C, %, hPa, m/s, tenths, m).
TMY3_COLUMNS: dict[str, str] = {
    "Dry-bulb (C)": "t2m",
    "Dew-point (C)": "td2m",
    "RHum (%)": "rh",
    "Pressure (mbar)": "pressure",
    "Wdir (degrees)": "wind_dir",
    "Wspd (m/s)": "wind_speed",
    "TotCld (tenths)": "total_cloud",
    "OpqCld (tenths)": "opaque_cloud",
    "Hvis (m)": "visibility",
    "CeilHgt (m)": "ceiling",
    "Lprecip depth (mm)": "precip",
    "PresWth (METAR code)": "present_weather",
}


def default_tmy3_path() -> Path:
    """The Greensboro (NC) TMY3 year that ships with pvlib (BSD-3).

    Located without importing pvlib, which keeps a fully cached run fast.
    """
    spec = importlib.util.find_spec("pvlib")
    if spec is None or spec.origin is None:
        raise DataSourceError("pvlib is not installed; it ships the reference TMY3 file")
    return Path(spec.origin).parent / "data" / "723170TYA.CSV"


def data_path(cfg: DataConfig) -> Path:
    """The local file of ``cfg``: ``data.path``, the cached download of ``data.url``, or
    the reference TMY3 year."""
    from wxops.data.remote import fetch_data

    fetched = fetch_data(cfg)
    if fetched is not None:
        return fetched.path
    return cfg.path if cfg.path is not None else default_tmy3_path()


def read_source(cfg: DataConfig) -> pd.DataFrame:
    """Read the configured source into the tidy table (see module docstring)."""
    path = data_path(cfg)
    if not path.exists():
        raise DataSourceError(f"{path}: data file not found (data.path in the config)")
    if cfg.source == "tmy3":
        frame = _read_tmy3(path)
    elif cfg.source == "table":
        frame = _read_table(path, cfg.time_column)
    else:
        frame = _read_xarray(path, cfg.source, cfg.time_column, cfg.station)
    frame = frame.rename(columns=cfg.columns)
    if frame.empty:
        raise DataSourceError(f"{path}: the file holds no rows")
    return frame.reset_index(drop=True)


def _read_tmy3(path: Path) -> pd.DataFrame:
    import pandas as pd
    from pvlib.iotools import read_tmy3

    try:
        raw, _meta = read_tmy3(str(path), map_variables=False)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"{path}: not a readable TMY3 file ({exc})") from exc
    missing = sorted(set(TMY3_COLUMNS) - set(raw.columns))
    if missing:
        raise DataSourceError(f"{path}: TMY3 file lacks columns {missing}")
    frame = raw[list(TMY3_COLUMNS)].rename(columns=TMY3_COLUMNS).astype("float64")
    # TMY3 stamps are hour-ending local standard time; a TMY year stitches months
    # from different years, so each (year, month) of the hour's start is one block.
    start = raw.index - pd.Timedelta(hours=1)
    frame.insert(0, "block", start.strftime("%Y-%m"))
    frame.insert(0, "time", raw.index.tz_convert("UTC"))
    return frame


def _read_table(path: Path, time_column: str) -> pd.DataFrame:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".gz"):
            frame = pd.read_csv(path)
        else:
            raise DataSourceError(f"{path}: unknown table format '{suffix}'; use .csv or .parquet")
    except DataSourceError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"{path}: cannot read table ({exc})") from exc
    if time_column not in frame.columns:
        raise DataSourceError(
            f"{path}: no time column '{time_column}' (columns: {list(frame.columns)[:12]}); "
            "set data.time_column"
        )
    return _with_utc_time(frame, time_column, path)


def _read_xarray(path: Path, source: str, time_column: str, station: str | None) -> pd.DataFrame:
    import xarray as xr

    try:
        ds = xr.open_zarr(path) if source == "zarr" else xr.open_dataset(path)
    except (ValueError, OSError, KeyError) as exc:
        raise DataSourceError(f"{path}: cannot open {source} dataset ({exc})") from exc
    with ds:
        if time_column not in ds.dims and time_column not in ds.coords:
            raise DataSourceError(f"{path}: no '{time_column}' dimension (set data.time_column)")
        if "station" in ds.dims:
            if station is None:
                raise DataSourceError(
                    f"{path}: has {ds.sizes['station']} stations; choose one with data.station"
                )
            try:
                ds = ds.sel(station=station)
            except KeyError as exc:
                raise DataSourceError(f"{path}: station '{station}' not in the file") from exc
        frame = ds.drop_vars([v for v in ds.coords if v != time_column]).to_dataframe()
    return _with_utc_time(frame.reset_index(), time_column, path)


def _with_utc_time(frame: pd.DataFrame, time_column: str, path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        time = pd.to_datetime(frame[time_column], utc=True)
    except (ValueError, TypeError) as exc:
        raise DataSourceError(f"{path}: column '{time_column}' is not a time ({exc})") from exc
    frame = frame.drop(columns=[time_column])
    frame.insert(0, "time", time)
    return frame
