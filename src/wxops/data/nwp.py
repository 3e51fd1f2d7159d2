"""NWP forecasts from NetCDF, Zarr or GRIB files, extracted at stations.

Files are opened lazily through xarray with a named engine (:mod:`wxops.data.openers`;
GRIB with cfgrib, from the ``grib`` extra) and normalised to
dimensions ``init_time``, ``lead_time`` and two spatial dimensions, whatever the producer
called them (``forecast_reference_time``/``time``, ``step``/``forecast_period``,
``latitude``/``lat`` or a 2-D grid with 2-D ``lat``/``lon`` coordinates). Stations are
then picked with one vectorised ``isel`` per file (nearest grid point, or the four
corners of the enclosing cell for bilinear weights), so only the station points are ever
loaded: an archive larger than memory streams through file by file.

Every failure names the file and, where it applies, the variable or station.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wxops.errors import NWPDataError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from wxops.config import NWPConfig

#: Standard-atmosphere lapse rate (K per metre) for the height correction.
LAPSE_RATE = 0.0065
#: Gravity (m s-2), turns a geopotential into a height.
GRAVITY = 9.80665
#: Variables the height correction applies to (2 m temperature under common names).
TEMPERATURE_VARIABLES: frozenset[str] = frozenset({"t2m", "2t", "t_2m", "tas", "temperature_2m"})

_INIT_NAMES = ("init_time", "forecast_reference_time", "reference_time", "time")
_LEAD_NAMES = ("lead_time", "step", "forecast_period", "leadtime")
_LAT_NAMES = ("latitude", "lat", "nav_lat")
_LON_NAMES = ("longitude", "lon", "nav_lon")


@dataclass(frozen=True)
class StationPoints:
    """Where each station sits in a grid: fractional indices along the two grid dims."""

    ids: list[str]
    dims: tuple[str, str]
    frac: np.ndarray
    """Shape (n_stations, 2): fractional index along ``dims[0]`` and ``dims[1]``."""
    elevation: np.ndarray


def read_stations(path: Path) -> pd.DataFrame:
    """The station list (``id, lat, lon, elevation``) with ids as strings."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype={"id": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise NWPDataError(f"{path}: cannot read the station list ({exc})") from exc
    missing = sorted({"id", "lat", "lon"} - set(frame.columns))
    if missing:
        raise NWPDataError(f"{path}: the station list lacks columns {missing} (need id, lat, lon, elevation)")
    if "elevation" not in frame.columns:
        frame["elevation"] = np.nan
    if frame["id"].duplicated().any():
        dupes = sorted(frame.loc[frame["id"].duplicated(), "id"].unique())[:5]
        raise NWPDataError(f"{path}: station ids repeat: {dupes}")
    return frame[["id", "lat", "lon", "elevation"]].reset_index(drop=True)


def expand_paths(paths: str | Sequence[str]) -> list[Path]:
    """A glob or a list of files -> the sorted existing files; none is an error."""
    import glob

    patterns = [paths] if isinstance(paths, str) else list(paths)
    found: list[Path] = []
    for pattern in patterns:
        hits = sorted(glob.glob(pattern))
        if not hits:
            raise NWPDataError(f"{pattern}: no NWP file matches (data.nwp.paths)")
        found.extend(Path(h) for h in hits)
    return found


def open_nwp_file(path: Path, source: str) -> xr.Dataset:
    """Open one file lazily (dask-backed) and normalise its dimension names."""
    import xarray as xr

    from wxops.data.openers import open_grib, open_netcdf, require_grib

    if not path.exists():
        raise NWPDataError(f"{path}: NWP file not found")
    if source == "grib":
        require_grib()  # a missing extra is said as such, not as an unreadable file
    try:
        if source == "zarr":
            ds = xr.open_zarr(path, chunks=None)
        elif source == "grib":
            _check_grib_complete(path)
            ds = open_grib(path, decode_timedelta=True)
        else:
            ds = open_netcdf(path, decode_timedelta=True)
    except Exception as exc:  # any backend failure on open: re-raised with the file named
        raise NWPDataError(f"{path}: cannot open as {source} ({type(exc).__name__}: {exc}); "
                           "the file may be truncated or of another format") from exc
    return normalise(ds, label=str(path))


def _check_grib_complete(path: Path) -> None:
    """cfgrib silently skips a cut-off last message; a whole GRIB file ends with ``7777``."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 4))
        tail = handle.read(4)
    if tail != b"7777":
        raise NWPDataError(f"{path}: truncated GRIB file (it does not end with a message's "
                           "end marker 7777); fetch it again")


def normalise(ds: xr.Dataset, *, label: str) -> xr.Dataset:
    """Rename to ``init_time``/``lead_time``/``lat``/``lon`` and make both time dims exist."""
    import pandas as pd

    names = set(ds.dims) | set(ds.coords)
    init = next((n for n in _INIT_NAMES if n in names), None)
    lead = next((n for n in _LEAD_NAMES if n in names), None)
    if init is None:
        raise NWPDataError(f"{label}: no forecast reference time (one of {list(_INIT_NAMES)})")
    if init == "time" and lead is None and "forecast_reference_time" not in names:
        raise NWPDataError(f"{label}: 'time' without a lead time: cannot tell init from valid time")
    rename: dict[str, str] = {}
    if init != "init_time":
        rename[init] = "init_time"
    if lead is not None and lead != "lead_time":
        rename[lead] = "lead_time"
    lat = next((n for n in _LAT_NAMES if n in names), None)
    lon = next((n for n in _LON_NAMES if n in names), None)
    if lat is None or lon is None:
        raise NWPDataError(f"{label}: no latitude/longitude coordinates (one of {list(_LAT_NAMES)})")
    if lat != "lat":
        rename[lat] = "lat"
    if lon != "lon":
        rename[lon] = "lon"
    # 'valid_time' of cfgrib is recomputed from init + lead; drop it to avoid clashes.
    ds = ds.drop_vars([v for v in ("valid_time",) if v in ds.variables and v not in ds.dims])
    ds = ds.rename(rename)
    if lead is None:
        ds = ds.assign_coords(lead_time=pd.Timedelta(0))
    for dim in ("init_time", "lead_time"):
        if dim not in ds.dims:
            ds = ds.expand_dims(dim)
    if not np.issubdtype(ds["lead_time"].dtype, np.timedelta64):
        ds = ds.assign_coords(lead_time=pd.to_timedelta(ds["lead_time"].values, unit="h"))
    return ds


def check_variables(ds: xr.Dataset, cfg: NWPConfig, *, label: str) -> None:
    """Each configured variable exists, on the grid, with the configured units."""
    available = sorted(str(v) for v in ds.data_vars)
    for name in cfg.variables:
        if name not in ds.data_vars:
            raise NWPDataError(f"{label}: variable '{name}' not in the file (it has {available}); "
                               "fix data.nwp.variables")
        want = cfg.units.get(name)
        got = ds[name].attrs.get("units")
        if want is not None and got != want:
            raise NWPDataError(f"{label}: variable '{name}' has units {got!r}, expected {want!r} "
                               "(data.nwp.units); convert the file or change the expectation")


def locate_stations(ds: xr.Dataset, stations: pd.DataFrame, *, interpolation: str,
                    label: str) -> StationPoints:
    """Fractional grid indices of each station; a station outside the grid is an error."""
    lat = np.asarray(ds["lat"].values, dtype=float)
    lon = np.asarray(ds["lon"].values, dtype=float)
    s_lat = stations["lat"].to_numpy(dtype=float)
    s_lon = stations["lon"].to_numpy(dtype=float)
    if lat.ndim == 1 and lon.ndim == 1:
        dims = (str(ds["lat"].dims[0]), str(ds["lon"].dims[0]))
        if float(np.nanmax(lon)) > 180.0:
            s_lon = np.mod(s_lon, 360.0)
        frac = np.column_stack([_frac_index(lat, s_lat), _frac_index(lon, s_lon)])
    elif lat.ndim == 2 and lat.shape == lon.shape:
        dims = (str(ds["lat"].dims[0]), str(ds["lat"].dims[1]))
        frac = _frac_index_2d(lat, lon, s_lat, s_lon)
    else:
        raise NWPDataError(f"{label}: latitude/longitude are neither 1-D axes nor one 2-D grid")
    shape = np.array([ds.sizes[dims[0]], ds.sizes[dims[1]]], dtype=float)
    low, high = (0.0, shape - 1.0) if interpolation == "bilinear" else (-0.5, shape - 0.5)
    eps = 1e-6
    outside = ~np.all(np.isfinite(frac) & (frac >= low - eps) & (frac <= high + eps), axis=1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise NWPDataError(
            f"{label}: station '{stations['id'].iloc[i]}' ({s_lat[i]:g}, {stations['lon'].iloc[i]:g}) "
            f"lies outside the grid (lat {np.nanmin(lat):g}..{np.nanmax(lat):g}, lon "
            f"{np.nanmin(lon):g}..{np.nanmax(lon):g}); remove it from data.stations"
        )
    frac = np.clip(frac, 0.0, shape - 1.0)
    return StationPoints(list(stations["id"].astype(str)), dims, frac,
                         stations["elevation"].to_numpy(dtype=float))


def _frac_index(axis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Fractional index of ``values`` on a monotonic axis (ascending or descending)."""
    index = np.arange(axis.size, dtype=float)
    if axis.size == 1:
        return np.where(np.isclose(values, axis[0]), 0.0, np.nan)
    if axis[0] > axis[-1]:
        axis, index = axis[::-1], index[::-1]
    step = abs(float(axis[1] - axis[0]))
    # Half a cell beyond the edges still has a nearest point; further out is outside.
    out = np.interp(values, axis, index, left=np.nan, right=np.nan)
    below = (values < axis[0]) & (values >= axis[0] - step / 2)
    above = (values > axis[-1]) & (values <= axis[-1] + step / 2)
    out[below] = index[0] - (axis[0] - values[below]) / step * np.sign(index[-1] - index[0])
    out[above] = index[-1] + (values[above] - axis[-1]) / step * np.sign(index[-1] - index[0])
    return out


def _frac_index_2d(lat: np.ndarray, lon: np.ndarray, s_lat: np.ndarray, s_lon: np.ndarray) -> np.ndarray:
    """Fractional (j, i) on a curvilinear grid: nearest point, then a local linear solve.

    The grid is locally affine in (j, i), so the offset from the nearest point follows
    from the finite-difference Jacobian of (lat, lon) there: exact on rotated or
    projected regular grids up to the curvature within one cell.
    """
    from scipy.spatial import cKDTree

    def xyz(la: np.ndarray, lo: np.ndarray) -> np.ndarray:
        la, lo = np.deg2rad(la), np.deg2rad(lo)
        return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])

    ny, nx = lat.shape
    tree = cKDTree(xyz(lat.ravel(), lon.ravel()))
    _, flat = tree.query(xyz(s_lat, s_lon))
    out = np.full((s_lat.size, 2), np.nan)
    for k, idx in enumerate(np.atleast_1d(flat)):
        j, i = divmod(int(idx), nx)
        j0, j1 = (j, j + 1) if j + 1 < ny else (j - 1, j)
        i0, i1 = (i, i + 1) if i + 1 < nx else (i - 1, i)
        dlon = lambda a, b: (a - b + 180.0) % 360.0 - 180.0  # noqa: E731
        jac = np.array([[lat[j1, i] - lat[j0, i], lat[j, i1] - lat[j, i0]],
                        [dlon(lon[j1, i], lon[j0, i]), dlon(lon[j, i1], lon[j, i0])]])
        rhs = np.array([s_lat[k] - lat[j, i], dlon(s_lon[k], lon[j, i])])
        try:
            dj, di = np.linalg.solve(jac, rhs)
        except np.linalg.LinAlgError:
            dj, di = 0.0, 0.0
        out[k] = (j + dj, i + di)
    return out


#: Most bytes of grid read at once per variable: larger files are read in init-time slabs.
SLAB_BYTES = 32 * 2**20


def corner_weights(points: StationPoints, shape: tuple[int, int], interpolation: str,
                   ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(j, i, weight) per corner: one corner for nearest, four for bilinear."""
    if interpolation == "nearest":
        idx = np.rint(points.frac).astype(int)
        return [(idx[:, 0], idx[:, 1], np.ones(len(idx), dtype=np.float32))]
    n = np.array(shape)
    base = np.clip(np.floor(points.frac), 0, np.maximum(n - 2, 0)).astype(int)
    w = points.frac - base
    out = []
    for oy in (0, 1):
        for ox in (0, 1):
            weight = (w[:, 0] if oy else 1 - w[:, 0]) * (w[:, 1] if ox else 1 - w[:, 1])
            out.append((np.minimum(base[:, 0] + oy, n[0] - 1), np.minimum(base[:, 1] + ox, n[1] - 1),
                        weight.astype(np.float32)))
    return out


def extract_points(ds: xr.Dataset, points: StationPoints, variables: list[str], *,
                   interpolation: str) -> xr.Dataset:
    """Values at the stations, dims ``(other dims..., station)``, read slab by slab.

    Only the bounding box of the stations' grid points is read, and in init-time slabs
    of at most :data:`SLAB_BYTES`, so memory stays small whatever the file's size.
    """
    import xarray as xr

    dy, dx = points.dims
    corners = corner_weights(points, (ds.sizes[dy], ds.sizes[dx]), interpolation)
    all_j = np.concatenate([c[0] for c in corners])
    all_i = np.concatenate([c[1] for c in corners])
    j0, j1, i0, i1 = int(all_j.min()), int(all_j.max()) + 1, int(all_i.min()), int(all_i.max()) + 1
    data: dict[str, Any] = {}
    coords: dict[str, Any] = {}
    for name in variables:
        da = ds[name].isel({dy: slice(j0, j1), dx: slice(i0, i1)})
        other = [str(d) for d in da.dims if d not in (dy, dx)]
        da = da.transpose(*other, dy, dx)
        per_init = max(1, int(np.prod([da.sizes[d] for d in other[1:]] or [1]))) * (j1 - j0) * (i1 - i0) * 4
        step = max(1, SLAB_BYTES // per_init)
        n_first = da.sizes[other[0]] if other else 1
        parts = []
        for start in range(0, n_first, step):
            slab = da.isel({other[0]: slice(start, start + step)}) if other else da
            block = np.asarray(slab.values)
            dtype = np.result_type(block.dtype, np.float32)  # float32 files stay float32
            acc = np.zeros((*block.shape[:-2], len(points.ids)), dtype=dtype)
            for jj, ii, weight in corners:
                acc += weight.astype(dtype) * block[..., jj - j0, ii - i0]
            parts.append(acc)
        data[name] = ((*other, "station"), np.concatenate(parts, axis=0) if other else parts[0])
        coords.update({d: ds[d].values for d in other if d in ds.coords})
    return xr.Dataset(data, coords=coords)


def model_orography(ds: xr.Dataset, name: str, *, label: str) -> xr.DataArray:
    """Model surface height in metres from ``name`` (metres) or a geopotential ``z``."""
    for candidate in (name, "z", "orog", "hsurf", "HSURF"):
        if candidate in ds.variables:
            height = ds[candidate]
            if candidate == "z" or str(height.attrs.get("units", "")) in ("m**2 s**-2", "m2 s-2"):
                height = height / GRAVITY
            extra = [d for d in height.dims if d in ("init_time", "lead_time")]
            return height.isel(dict.fromkeys(extra, 0))
    raise NWPDataError(f"{label}: height correction needs the model orography "
                       f"(variable '{name}' or 'z'); add it or set data.nwp.height_correction: false")


def extract_file(path: Path, cfg: NWPConfig, stations: pd.DataFrame) -> pd.DataFrame:
    """One file's forecasts at ``stations``: rows (station, init_time, lead_time).

    Columns: ``station, init_time, lead_time`` (hours), ``valid_time`` and one per variable.
    """

    import xarray as xr

    label = str(path)
    ds = open_nwp_file(path, cfg.source)
    try:
        check_variables(ds, cfg, label=label)
        points = locate_stations(ds, stations, interpolation=cfg.interpolation, label=label)
        units = {name: ds[name].attrs.get("units") for name in cfg.variables}
        orog = model_orography(ds, cfg.orography, label=label) if cfg.height_correction else None
        try:
            loaded = extract_points(ds, points, list(cfg.variables), interpolation=cfg.interpolation)
            if orog is not None:
                model_z = extract_points(orog.to_dataset(name="orog"), points, ["orog"],
                                         interpolation=cfg.interpolation)["orog"]
                dz = (model_z - xr.DataArray(points.elevation, dims="station")).fillna(0.0)
                for name in cfg.variables:
                    if name in TEMPERATURE_VARIABLES:
                        loaded[name] = loaded[name] + LAPSE_RATE * dz
        except (OSError, RuntimeError, ValueError, EOFError) as exc:  # a cut data section fails on read
            raise NWPDataError(f"{label}: reading {list(cfg.variables)} failed ({type(exc).__name__}: "
                               f"{exc}); the file may be truncated") from exc
    finally:
        ds.close()
    return _to_frame(loaded, points.ids, cfg, units)


def _to_frame(loaded: xr.Dataset, ids: list[str], cfg: NWPConfig,
              units: dict[str, str | None]) -> pd.DataFrame:
    """Flat rows (station, init, lead) built from the arrays directly: no MultiIndex copies."""
    import pandas as pd

    order = ("station", "init_time", "lead_time")
    n_st, n_init, n_lead = (loaded.sizes[d] for d in order)
    init = pd.DatetimeIndex(loaded["init_time"].values).tz_localize("UTC")
    lead = pd.TimedeltaIndex(loaded["lead_time"].values)
    init_rows = np.tile(np.repeat(init.values, n_lead), n_st)
    lead_rows = np.tile(lead.values, n_st * n_init)
    columns: dict[str, Any] = {
        "station": np.repeat(np.asarray(ids, dtype=object), n_init * n_lead),
        "init_time": pd.DatetimeIndex(init_rows).tz_localize("UTC"),
        "lead_time": lead_rows.astype("timedelta64[s]").astype(np.int64) / 3600.0,
        "valid_time": pd.DatetimeIndex(init_rows + lead_rows).tz_localize("UTC"),
    }
    for name in cfg.variables:
        columns[cfg.columns.get(name, name)] = np.asarray(
            loaded[name].transpose(*order).values, dtype="float64").ravel()
    frame = pd.DataFrame(columns)
    for name in cfg.variables:
        to_wxops_units(frame, cfg.columns.get(name, name), units[name])
    return frame


#: (file units, wxops units) -> (scale, offset): value * scale + offset.
_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("K", "degC"): (1.0, -273.15),
    ("Pa", "hPa"): (0.01, 0.0),
    ("m s**-1", "m s-1"): (1.0, 0.0),
    ("(0 - 1)", "tenths"): (10.0, 0.0),
    ("%", "tenths"): (0.1, 0.0),
}


def to_wxops_units(frame: pd.DataFrame, column: str, units: str | None) -> None:
    """Convert ``column`` in place to wxops' units when it is a known wxops variable.

    NWP files give temperatures in K and pressure in Pa; observations (and wxops'
    physical ranges) use degC and hPa, so the raw-NWP reference is comparable.
    """
    from wxops.data.qc import VARIABLES

    var = VARIABLES.get(column)
    if var is None or units is None or units == var.units:
        return
    conversion = _CONVERSIONS.get((units, var.units))
    if conversion is not None:
        frame[column] = frame[column] * conversion[0] + conversion[1]
