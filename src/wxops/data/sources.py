"""Readers that turn an observation file into wxops' tidy table.

Every reader returns a DataFrame with a tz-aware UTC ``time`` column, one float64 column
per variable under wxops' names and units (``t2m`` in degC, ``visibility`` in m...; see
:data:`wxops.data.qc.VARIABLES`) and, where the source knows its own blocks, a ``block``
column. Readers only read, rename and convert units: cleaning is
:func:`wxops.data.qc.apply_qc`'s job.

What a reader did to get there is in ``frame.attrs["wxops"]`` (:func:`source_notes`):
which file column became which wxops column, the units converted, how many cells held a
missing marker, and how local times were turned into UTC. The QC report carries it, so
nothing is changed silently.

Times: TMY3/TMY2 files carry their time zone. For tables and NetCDF/Zarr, times with
an offset are converted to UTC; naive times are taken in ``data.timezone`` (UTC when
unset). In a zone with daylight saving, the hour repeated in autumn is resolved by the
order of the rows (first the summer-time hour, then the standard-time one); where the
order cannot tell (the hour appears once, or the rows are not sorted), and for times
that do not exist (the hour skipped in spring), the time becomes missing and QC's
``bad_time`` rule flags the row. Both counts are in the QC report.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

#: TMY2 column -> (wxops variable, scale, unit): the file's integers times the scale are
#: in the unit (TMY2 stores tenths of degC and of m/s, visibility in tenths of km).
TMY2_COLUMNS: dict[str, tuple[str, float, str]] = {
    "DryBulb": ("t2m", 0.1, "degC"),
    "DewPoint": ("td2m", 0.1, "degC"),
    "RHum": ("rh", 1.0, "percent"),
    "Pressure": ("pressure", 1.0, "hPa"),
    "Wdir": ("wind_dir", 1.0, "degree"),
    "Wspd": ("wind_speed", 0.1, "m/s"),
    "TotCld": ("total_cloud", 1.0, "tenths"),
    "OpqCld": ("opaque_cloud", 1.0, "tenths"),
    "Hvis": ("visibility", 0.1, "km"),
    "CeilHgt": ("ceiling", 1.0, "m"),
    "PresentWeather": ("present_weather", 1.0, ""),
}
#: TMY2 codes (User's Manual for TMY2s, table 3-5): missing data per column, and
#: "unlimited" visibility, which is read as the largest visibility of the file.
_TMY2_MISSING: dict[str, float] = {"Hvis": 9999.0, "CeilHgt": 99999.0}
_TMY2_UNLIMITED: dict[str, float] = {"Hvis": 7777.0}


def default_tmy3_path() -> Path:
    """The Greensboro (NC) TMY3 year that ships with pvlib (BSD-3).

    Located without importing pvlib, which keeps a fully cached run fast.
    """
    spec = importlib.util.find_spec("pvlib")
    if spec is None or spec.origin is None:
        raise DataSourceError("pvlib is not installed; it ships the reference TMY3 file")
    return Path(spec.origin).parent / "data" / "723170TYA.CSV"


def source_notes(frame: pd.DataFrame) -> dict[str, Any]:
    """What the reader did (file columns, units, missing markers, time zone)."""
    return dict(frame.attrs.get("wxops", {}))


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
    notes: dict[str, Any] = {"file_columns": {}, "units": {}, "missing_markers": {}}
    file_units: dict[str, str] = {}
    if cfg.source == "tmy3":
        frame = _read_tmy3(path, notes)
    elif cfg.source == "tmy2":
        frame = _read_tmy2(path, notes)
    elif cfg.source == "table":
        frame = _read_table(path, cfg, notes)
    else:
        frame, file_units = _read_xarray(path, cfg, notes)
    _mark_missing(frame, cfg, notes, path)
    frame = frame.rename(columns=cfg.columns)
    for file_name, name in cfg.columns.items():
        notes["file_columns"][name] = notes["file_columns"].pop(file_name, file_name)
    for col in frame.columns:
        if col not in ("time", "block"):
            notes["file_columns"].setdefault(str(col), str(col))
    if frame.empty:
        raise DataSourceError(f"{path}: the file holds no rows")
    frame = _convert_units(frame, cfg, {cfg.columns.get(k, k): v for k, v in file_units.items()},
                           notes, path)
    # one dtype whatever the file stored (float32 NetCDF, int CSV): one model signature
    import pandas as pd

    for col in frame.columns:
        if col not in ("time", "block") and pd.api.types.is_numeric_dtype(frame[col]) \
                and not pd.api.types.is_bool_dtype(frame[col]):
            frame[col] = frame[col].astype("float64")
    frame = frame.reset_index(drop=True)
    frame.attrs["wxops"] = notes
    return frame


def _mark_missing(frame: pd.DataFrame, cfg: DataConfig, notes: dict[str, Any], path: Path) -> None:
    """Blank the declared missing markers (``data.na_values``) and make columns numeric."""
    import pandas as pd

    markers = cfg.na_values
    reverse = {v: k for k, v in cfg.columns.items()}
    per_column: dict[str, list[str]] = {}
    if isinstance(markers, dict):
        for key, values in markers.items():
            col = key if key in frame.columns else reverse.get(key, key)
            if col not in frame.columns:
                raise DataSourceError(f"{path}: data.na_values names column '{key}', which the "
                                      f"file lacks (columns: {_shown(frame)})")
            per_column[col] = [str(v) for v in values]
    elif markers:
        per_column = {str(c): [str(v) for v in markers] for c in frame.columns
                      if c not in ("time", "block")}
    for col, values in per_column.items():
        text = frame[col].astype("string").str.strip()
        hit = text.isin(values) & frame[col].notna()
        count = int(hit.sum())
        if count:
            frame[col] = frame[col].mask(hit)
            name = cfg.columns.get(col, col)
            notes["missing_markers"][name] = count
        if frame[col].dtype == object:
            converted = pd.to_numeric(frame[col], errors="coerce")
            if (converted.notna() | frame[col].isna()).all():
                frame[col] = converted


def _convert_units(frame: pd.DataFrame, cfg: DataConfig, file_units: dict[str, str],
                   notes: dict[str, Any], path: Path) -> pd.DataFrame:
    from wxops.data.qc import VARIABLES
    from wxops.data.units import convert, same_unit

    declared = {cfg.columns.get(k, k): v for k, v in cfg.units.items()}
    unknown = sorted(set(declared) - set(frame.columns))
    if unknown:
        raise DataSourceError(f"{path}: data.units names columns {unknown} the data lacks "
                              f"(columns: {_shown(frame)})")
    for name, unit in file_units.items():
        if name in declared and not same_unit(declared[name], unit):
            raise DataSourceError(
                f"{path}: column '{notes['file_columns'].get(name, name)}' ({name}) says "
                f"units {unit!r} in the file but data.units says {declared[name]!r}; "
                "remove the data.units entry or fix the file")
    units = {**file_units, **declared}
    for name, unit in units.items():
        var = VARIABLES.get(name)
        if var is None or name not in frame.columns or not unit:
            continue
        where = f"{path}: column '{notes['file_columns'].get(name, name)}' ({name})"
        values = frame[name].to_numpy(dtype="float64", na_value=float("nan"))
        frame[name] = convert(values, unit, var.units, where=where)
        if not same_unit(unit, var.units):
            notes["units"][name] = f"{unit} -> {var.units}"
    return frame


def _read_tmy3(path: Path, notes: dict[str, Any] | None = None) -> pd.DataFrame:
    import pandas as pd
    from pvlib.iotools import read_tmy3

    notes = notes if notes is not None else {"file_columns": {}}
    try:
        raw, _meta = read_tmy3(str(path), map_variables=False)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        hint = " (it looks like a TMY2 file: set data.source: tmy2)" if _looks_tmy2(path) else ""
        raise DataSourceError(f"{path}: not a readable TMY3 file ({exc}){hint}") from exc
    present = [c for c in TMY3_COLUMNS if c in raw.columns]
    if not present:
        raise DataSourceError(f"{path}: TMY3 file has none of the columns {list(TMY3_COLUMNS)}")
    frame = raw[present].rename(columns=TMY3_COLUMNS)
    frame = frame.apply(pd.to_numeric, errors="coerce").astype("float64")
    notes["file_columns"].update({TMY3_COLUMNS[c]: c for c in present})
    absent = [c for c in TMY3_COLUMNS if c not in raw.columns]
    if absent:
        notes["absent_columns"] = absent
    # TMY3 stamps are hour-ending local standard time; a TMY year stitches months
    # from different years, so each (year, month) of the hour's start is one block.
    start = raw.index - pd.Timedelta(hours=1)
    frame.insert(0, "block", start.strftime("%Y-%m"))
    frame.insert(0, "time", raw.index.tz_convert("UTC"))
    return frame


def _looks_tmy2(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            first = fh.readline(200)
    except OSError:
        return False
    return b"," not in first and first[:6].strip().isdigit()


def _read_tmy2(path: Path, notes: dict[str, Any]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    from pvlib.iotools import read_tmy2

    from wxops.data.qc import VARIABLES
    from wxops.data.units import convert, same_unit

    try:
        raw, _meta = read_tmy2(str(path))
    except (ValueError, KeyError, IndexError, UnicodeDecodeError, TypeError) as exc:
        raise DataSourceError(f"{path}: not a readable TMY2 file ({exc}); a TMY3 file (CSV) "
                              "is read with data.source: tmy3") from exc
    frame = pd.DataFrame(index=raw.index)
    for col, (name, scale, unit) in TMY2_COLUMNS.items():
        values = raw[col].astype("float64")
        if col in _TMY2_MISSING:
            missing = values == _TMY2_MISSING[col]
            if missing.any():
                notes["missing_markers"][name] = int(missing.sum())
            values = values.mask(missing)
        if col in _TMY2_UNLIMITED:
            unlimited = values == _TMY2_UNLIMITED[col]
            values = values.mask(unlimited, values[~unlimited].max())
        if name in VARIABLES:
            values = pd.Series(convert(values.to_numpy() * scale, unit, VARIABLES[name].units,
                                       where=f"{path}: column '{col}'"), index=raw.index)
            if scale != 1.0 or not same_unit(unit, VARIABLES[name].units):
                notes["units"][name] = f"{scale:g} {unit} -> {VARIABLES[name].units}"
        frame[name] = values.to_numpy(dtype=np.float64)
        notes["file_columns"][name] = col
    # pvlib stamps TMY2 rows at the hour's start (hour 1 -> 00:00) in local standard time.
    index = pd.DatetimeIndex(raw.index)
    frame.insert(0, "block", index.strftime("%Y-%m"))
    frame.insert(0, "time", index.tz_convert("UTC"))
    return frame.reset_index(drop=True)


def _read_table(path: Path, cfg: DataConfig, notes: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".gz"):
            frame = pd.read_csv(path, keep_default_na=True)
        else:
            raise DataSourceError(f"{path}: unknown table format '{suffix}'; use .csv or .parquet")
    except DataSourceError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"{path}: cannot read table ({exc})") from exc
    if cfg.time_column not in frame.columns:
        raise DataSourceError(
            f"{path}: no time column '{cfg.time_column}' (columns: {list(frame.columns)[:12]}); "
            "set data.time_column"
        )
    return _with_utc_time(frame, cfg, path, notes)


def _read_xarray(path: Path, cfg: DataConfig,
                 notes: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, str]]:
    import xarray as xr

    from wxops.data.openers import open_netcdf

    source, time_column, station = cfg.source, cfg.time_column, cfg.station
    try:
        ds = xr.open_zarr(path) if source == "zarr" else open_netcdf(path)
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
        # CF units attributes: converted to wxops' units once the columns are renamed.
        units = {str(name): str(var.attrs["units"]) for name, var in ds.data_vars.items()
                 if "units" in var.attrs}
        frame = ds.drop_vars([v for v in ds.coords if v != time_column]).to_dataframe()
    return _with_utc_time(frame.reset_index(), cfg, path, notes), units


def _with_utc_time(frame: pd.DataFrame, cfg: DataConfig, path: Path,
                   notes: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    time_column = cfg.time_column
    raw = frame[time_column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_datetime64_any_dtype(raw):
        raise DataSourceError(f"{path}: column '{time_column}' holds numbers, not times; write "
                              "ISO 8601 times (2024-01-01T06:00)")
    try:
        parsed = pd.to_datetime(raw, utc=False) if not _has_offsets(raw) else \
            pd.to_datetime(raw, utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataSourceError(f"{path}: column '{time_column}' is not a time ({exc})") from exc
    if getattr(parsed.dt, "tz", None) is not None:
        time = parsed.dt.tz_convert("UTC")
        notes["time"] = "times with offsets, converted to UTC"
    elif cfg.timezone is None:
        time = parsed.dt.tz_localize("UTC")
        notes["time"] = "naive times taken as UTC (set data.timezone if they are local)"
    else:
        time = _localize(parsed, cfg.timezone, notes)
    frame = frame.drop(columns=[time_column])
    frame.insert(0, "time", time)
    notes["file_columns"]["time"] = time_column
    return frame


def _has_offsets(raw: pd.Series) -> bool:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(raw):
        return getattr(raw.dt, "tz", None) is not None
    sample = raw.dropna().astype(str).head(50)
    return bool(sample.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).any())


def _localize(naive: pd.Series, zone: str, notes: dict[str, Any]) -> pd.Series:
    """Naive local times -> UTC by the documented rule (module docstring)."""
    import numpy as np

    n = len(naive)
    try:
        local = naive.dt.tz_localize(zone, ambiguous="infer", nonexistent="NaT")
    except (ValueError, TypeError):
        # the order cannot tell which repeated hour is which: those become missing
        local = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    early = naive.dt.tz_localize(zone, ambiguous=np.ones(n, dtype=bool), nonexistent="NaT")
    late = naive.dt.tz_localize(zone, ambiguous=np.zeros(n, dtype=bool), nonexistent="NaT")
    nonexistent = early.isna() & naive.notna()
    repeated = (early != late) & early.notna()
    unresolved = local.isna() & naive.notna() & ~nonexistent
    notes["time"] = f"local times in {zone}, converted to UTC"
    notes["local_time"] = {
        "timezone": zone,
        "ambiguous_rows": int(repeated.sum()),
        "ambiguous_unresolved": int(unresolved.sum()),
        "nonexistent_rows": int(nonexistent.sum()),
        "rule": "a repeated local hour is resolved by row order (summer time first); an "
                "unresolvable or non-existent local time becomes missing (QC rule bad_time)",
    }
    return local.dt.tz_convert("UTC")


def _shown(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns if c not in ("time", "block")][:16]
