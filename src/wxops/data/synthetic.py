"""A synthetic multi-station, multi-year NWP + observation archive from the TMY3 year.

Real archives of this kind are not redistributable, yet tests and the scale benchmark
need hundreds of station-years. Everything is derived from the Greensboro TMY3 year
shipped in pvlib, with these documented perturbations (all drawn from ``seed``):

- stations: elevation 270 m + N(0, 120 m) (>= 5 m); temperature and dew point shifted by
  the standard lapse rate for the elevation difference plus a station offset N(0, 0.5 K);
  pressure by -12 hPa per 100 m;
- years: each repeats the TMY year plus a daily AR(1) anomaly per station and year
  (sd 1.5 K temperature, 1.2 K dew point, 2 hPa pressure, 0.6 m/s wind; lag-1 0.8), and
  a yearly offset N(0, 0.4 K);
- NWP: forecasts every 6 h (00/06/12/18 UTC) for leads 1-6 h, so valid times cover each
  hour once; the forecast is the observation at valid time plus a station bias
  N(0, 0.5 K), a lead-dependent drift (+0.1 K/h) and noise growing with lead
  (sd 0.4 + 0.15 h K; other variables scaled), on a regular 0.1 degree grid where each
  station sits on its own grid point; the model orography differs from the station
  elevation by N(0, 80 m) and the forecast temperature follows the model height, so the
  height correction has something to correct;
- units as NWP files have them: K, Pa, m s**-1, degree, (0 - 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: NWP variable -> (wxops name, units in the file).
NWP_VARIABLES: dict[str, tuple[str, str]] = {
    "t2m": ("t2m", "K"),
    "d2m": ("td2m", "K"),
    "sp": ("pressure", "Pa"),
    "si10": ("wind_speed", "m s**-1"),
    "wdir10": ("wind_dir", "degree"),
    "tcc": ("total_cloud", "(0 - 1)"),
}
LEADS_H: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
INIT_EVERY_H = 6
_OBS_VARS = ("t2m", "td2m", "pressure", "wind_speed", "wind_dir", "total_cloud", "visibility")


@dataclass(frozen=True)
class SynthArchive:
    """Where the generator wrote its files."""

    nwp_files: list[Path]
    obs: Path
    stations: Path
    rows: int
    """Forecast rows (station x init x lead) the archive yields."""


def _tmy_year() -> dict[str, np.ndarray]:
    from wxops.data.sources import _read_tmy3, default_tmy3_path

    frame = _read_tmy3(default_tmy3_path()).sort_values("time")
    return {v: frame[v].to_numpy(dtype=np.float32) for v in _OBS_VARS}


def _daily_ar1(rng: np.random.Generator, shape: tuple[int, int], sd: float, phi: float = 0.8) -> np.ndarray:
    out = np.empty(shape, dtype=np.float32)
    noise = rng.normal(0.0, sd * math.sqrt(1 - phi**2), shape).astype(np.float32)
    out[:, 0] = rng.normal(0.0, sd, shape[0])
    for d in range(1, shape[1]):
        out[:, d] = phi * out[:, d - 1] + noise[:, d]
    return out


def station_table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Latitudes, longitudes, elevations, model orography, grid width (stations on points)."""
    rng = np.random.default_rng(seed)
    nx = math.ceil(math.sqrt(n))
    j, i = np.divmod(np.arange(n), nx)
    lat = np.round(36.0 + 0.1 * j, 4)
    lon = np.round(-80.5 + 0.1 * i, 4)
    elev = np.maximum(5.0, 270.0 + rng.normal(0.0, 120.0, n))
    orog = elev + rng.normal(0.0, 80.0, n)
    return lat, lon, elev, orog, nx


def generate(out_dir: Path, *, stations: int = 3, years: int = 1, start_year: int = 2015,
             seed: int = 0) -> SynthArchive:
    """Write ``nwp/nwp_<year>.nc``, ``obs.parquet`` and ``stations.csv`` below ``out_dir``."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import xarray as xr

    if stations < 1 or years < 1:
        raise ValueError("stations and years must be at least 1")
    rng = np.random.default_rng(seed)
    tmy = _tmy_year()
    lat, lon, elev, orog, nx = station_table(stations, seed)
    ny = math.ceil(stations / nx)
    ids = [f"S{k:04d}" for k in range(stations)]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "nwp").mkdir(exist_ok=True)
    pd.DataFrame({"id": ids, "lat": lat, "lon": lon, "elevation": np.round(elev, 1)}).to_csv(
        out_dir / "stations.csv", index=False)

    dz = (elev - 270.0).astype(np.float32)[:, None]
    st_off = rng.normal(0.0, 0.5, (stations, 1)).astype(np.float32)
    nwp_bias = rng.normal(0.0, 0.5, (stations, 1, 1)).astype(np.float32)
    writer: pq.ParquetWriter | None = None
    files: list[Path] = []
    rows = 0
    for year in range(start_year, start_year + years):
        # Observations of the year plus the first hours of the next (valid times of late inits).
        time = pd.date_range(f"{year}-01-01", f"{year + 1}-01-01 {max(LEADS_H):02d}:00", freq="h", tz="UTC")
        hours = len(time)
        slot = np.minimum(time.dayofyear.to_numpy() - 1, 364) * 24 + time.hour.to_numpy()
        days = hours // 24 + 1
        yr = np.random.default_rng([seed, year])
        anomaly = {v: np.repeat(_daily_ar1(yr, (stations, days), sd), 24, axis=1)[:, :hours]
                   for v, sd in (("t2m", 1.5), ("td2m", 1.2), ("pressure", 2.0), ("wind_speed", 0.6))}
        year_off = yr.normal(0.0, 0.4, (stations, 1)).astype(np.float32)
        obs = {v: np.broadcast_to(tmy[v][slot], (stations, hours)).astype(np.float32) for v in _OBS_VARS}
        obs["t2m"] = obs["t2m"] - 0.0065 * dz + st_off + year_off + anomaly["t2m"]
        obs["td2m"] = np.minimum(obs["td2m"] - 0.0065 * dz + st_off + year_off + anomaly["td2m"], obs["t2m"])
        obs["pressure"] = obs["pressure"] - 0.12 * dz + anomaly["pressure"]
        obs["wind_speed"] = np.maximum(0.0, obs["wind_speed"] + anomaly["wind_speed"])
        in_year = time.year == year
        n_obs = int(in_year.sum())
        table = pa.table({
            "station": np.repeat(np.array(ids), n_obs),
            "time": np.tile(time[in_year].to_numpy(), stations),
            **{v: obs[v][:, in_year].ravel() for v in _OBS_VARS},
        })
        if writer is None:
            writer = pq.ParquetWriter(out_dir / "obs.parquet", table.schema)
        writer.write_table(table, row_group_size=n_obs)  # one row group per station and year

        inits = pd.date_range(f"{year}-01-01", f"{year}-12-31 18:00", freq=f"{INIT_EVERY_H}h")
        valid_idx = (np.arange(len(inits)) * INIT_EVERY_H)[:, None] + np.array(LEADS_H)[None, :]
        lead = np.array(LEADS_H, dtype=np.float32)[None, :]
        fields: dict[str, np.ndarray] = {}
        for name, (wx, _units) in NWP_VARIABLES.items():
            truth = obs[wx][:, valid_idx]  # (stations, inits, leads)
            noise = yr.normal(0.0, 1.0, truth.shape).astype(np.float32) * (0.4 + 0.15 * lead)
            if wx in ("t2m", "td2m"):
                # The model sits at its own orography: colder where it is higher.
                value = truth + 0.0065 * (elev - orog).astype(np.float32)[:, None, None] \
                    + nwp_bias + 0.1 * lead + noise + 273.15
            elif wx == "pressure":
                value = (truth + 0.5 * noise) * 100.0
            elif wx == "wind_speed":
                value = np.maximum(0.0, truth + 0.3 * noise)
            elif wx == "wind_dir":
                value = np.mod(truth + 10.0 * noise, 360.0)
            else:
                value = np.clip(truth / 10.0 + 0.05 * noise, 0.0, 1.0)
            fields[name] = value
        grid_of = np.arange(ny * nx) % stations  # points without a station copy one
        data_vars: dict[str, Any] = {
            name: (("init_time", "lead_time", "lat", "lon"),
                   np.moveaxis(v[grid_of], 0, -1).reshape(len(inits), len(LEADS_H), ny, nx),
                   {"units": NWP_VARIABLES[name][1]})
            for name, v in fields.items()
        }
        data_vars["orog"] = (("lat", "lon"), orog[grid_of].reshape(ny, nx).astype(np.float32), {"units": "m"})
        ds = xr.Dataset(data_vars, coords={
            "init_time": inits, "lead_time": pd.to_timedelta(list(LEADS_H), unit="h"),
            "lat": np.round(36.0 + 0.1 * np.arange(ny), 4), "lon": np.round(-80.5 + 0.1 * np.arange(nx), 4)})
        path = out_dir / "nwp" / f"nwp_{year}.nc"
        ds.to_netcdf(path)
        files.append(path)
        rows += stations * len(inits) * len(LEADS_H)
    assert writer is not None
    writer.close()
    return SynthArchive(files, out_dir / "obs.parquet", out_dir / "stations.csv", rows)


def example_config(*, executor: str = "dask", workers: int = 2) -> str:
    """The ``wxops.yaml`` of a generated archive: t2m MOS from NWP at the stations."""
    columns = {k: v for k, (v, _u) in NWP_VARIABLES.items() if k != v}
    return f"""\
# Made by `wxops synth nwp`: 2 m temperature at stations from NWP forecasts (MOS).
seed: 42
data:
  nwp:
    source: netcdf
    paths: "nwp/*.nc"
    variables: [{", ".join(NWP_VARIABLES)}]
    columns: {{{", ".join(f"{k}: {v}" for k, v in columns.items())}}}
    interpolation: bilinear
    height_correction: true
  obs: {{source: table, path: obs.parquet}}
  stations: stations.csv
features:
  target: t2m
  predictors: [t2m, td2m, pressure, wind_speed, wind_dir, total_cloud]
  derived: [dewpoint_depression, wind_components, cyclic_time, station_onehot]
split:
  block: month
  min_rows: 24
models:
  - {{name: mlp-small, type: mlp, hidden_dim: 16, epochs: 5, batch_size: 512}}
  - {{name: mlp-wide, type: mlp, hidden_dim: 64, epochs: 5, batch_size: 512}}
  - {{name: gbm, type: gradient_boosting, max_iter: 50}}
  - {{name: ridge, type: linear}}
tracking:
  experiment: nwp-t2m
  registered_model: nwp-t2m
verify:
  thresholds: [0.0]
gate:
  rules:
    - {{score: rmse, against: climatology, min_skill: 0.0}}
    - {{score: rmse, against: nwp, min_skill: 0.0, alpha: 0.05}}
    - {{score: rmse, against: champion, max_worse_pct: 2.0, alpha: 0.05}}
execution:
  executor: {executor}
  workers: {workers}
"""
