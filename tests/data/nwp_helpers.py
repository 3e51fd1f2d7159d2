"""Small NWP files for tests: NetCDF through xarray, GRIB through ecCodes samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

LATS = np.array([34.0, 35.0, 36.0, 37.0])
LONS = np.array([-82.0, -81.0, -80.0, -79.0, -78.0])


def linear_field(lat: np.ndarray, lon: np.ndarray, lead_h: float, init_index: int) -> np.ndarray:
    """A field linear in lat and lon, so bilinear interpolation reproduces it exactly."""
    return 280.0 + 2.0 * lat + 0.5 * lon + 0.1 * lead_h + 10.0 * init_index


def make_dataset(inits: pd.DatetimeIndex, leads_h: list[int], *, names: dict[str, str] | None = None,
                 units: str = "K", orography: bool = False) -> xr.Dataset:
    """t2m and d2m on a regular grid; dimension names can be renamed with ``names``."""
    lat2, lon2 = np.meshgrid(LATS, LONS, indexing="ij")
    t2m = np.stack([np.stack([linear_field(lat2, lon2, h, i) for h in leads_h]) for i in range(len(inits))])
    ds = xr.Dataset(
        {"t2m": (("init_time", "lead_time", "lat", "lon"), t2m, {"units": units}),
         "d2m": (("init_time", "lead_time", "lat", "lon"), t2m - 5.0, {"units": units})},
        coords={"init_time": inits.tz_localize(None) if inits.tz is not None else inits,
                "lead_time": pd.to_timedelta(leads_h, unit="h"), "lat": LATS, "lon": LONS},
    )
    if orography:
        ds["orog"] = (("lat", "lon"), 100.0 * (lat2 - 34.0), {"units": "m"})
    return ds.rename(names or {})


def write_netcdf(path: Path, inits: pd.DatetimeIndex, leads_h: list[int], **kwargs: object) -> Path:
    make_dataset(inits, leads_h, **kwargs).to_netcdf(path)  # type: ignore[arg-type]
    return path


def write_grib(path: Path, inits: pd.DatetimeIndex, leads_h: list[int]) -> Path:
    """2 m temperature as GRIB 2 from ecCodes' regular_ll_sfc_grib2 sample."""
    from wxops.data.openers import require_grib

    require_grib()  # ecCodes after the libraries its wheel would shadow, as wxops reads GRIB
    import eccodes

    lat2, lon2 = np.meshgrid(LATS[::-1], LONS, indexing="ij")  # GRIB scans north to south
    with path.open("wb") as out:
        for i, init in enumerate(inits):
            for lead in leads_h:
                handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
                eccodes.codes_set_key_vals(handle, {
                    "Ni": len(LONS), "Nj": len(LATS),
                    "latitudeOfFirstGridPointInDegrees": float(LATS[-1]),
                    "latitudeOfLastGridPointInDegrees": float(LATS[0]),
                    "longitudeOfFirstGridPointInDegrees": float(LONS[0] % 360),
                    "longitudeOfLastGridPointInDegrees": float(LONS[-1] % 360),
                    "iDirectionIncrementInDegrees": 1.0, "jDirectionIncrementInDegrees": 1.0,
                })
                eccodes.codes_set(handle, "dataDate", int(init.strftime("%Y%m%d")))
                eccodes.codes_set(handle, "dataTime", int(init.strftime("%H%M")))
                eccodes.codes_set(handle, "shortName", "2t")
                eccodes.codes_set(handle, "stepUnits", 1)
                eccodes.codes_set(handle, "step", int(lead))
                eccodes.codes_set_values(handle, linear_field(lat2, lon2, lead, i).ravel())
                eccodes.codes_write(handle, out)
                eccodes.codes_release(handle)
    return path


def write_stations(path: Path, rows: list[tuple[str, float, float, float]]) -> Path:
    pd.DataFrame(rows, columns=["id", "lat", "lon", "elevation"]).to_csv(path, index=False)
    return path


def write_obs(path: Path, stations: list[str], start: str, hours: int, *, value: float = 15.0) -> Path:
    """Hourly observations of t2m at each station (value + station index + hour)."""
    time = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    frames = [pd.DataFrame({"station": s, "time": time, "t2m": value + k + np.arange(hours) % 24})
              for k, s in enumerate(stations)]
    pd.concat(frames, ignore_index=True).to_parquet(path)
    return path


def truncate(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
