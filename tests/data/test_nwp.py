"""NWP readers and station extraction on real NetCDF, Zarr and GRIB files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data.nwp_helpers import (
    linear_field,
    make_dataset,
    truncate,
    write_grib,
    write_netcdf,
    write_obs,
    write_stations,
)
from wxops.config import NWPConfig, SplitConfig, StationObsConfig
from wxops.data.nwp import extract_file, read_stations
from wxops.data.nwp_table import build_chunk, plan_chunks
from wxops.errors import NWPDataError
from wxops.split import block_labels, split_by_init_time

INITS = pd.date_range("2024-01-01", periods=2, freq="6h")
LEADS = [1, 2, 3]
KELVIN = 273.15


def _cfg(paths: str, **kw: object) -> NWPConfig:
    base: dict[str, object] = {"paths": paths, "variables": ["t2m"]}
    base.update(kw)
    return NWPConfig.model_validate(base)


@pytest.fixture
def stations(tmp_path: Path) -> pd.DataFrame:
    # A: exactly on a grid point; B: inside a cell (35.25N, 80.5W); both at 50 m.
    path = write_stations(tmp_path / "stations.csv",
                          [("A", 35.0, -80.0, 50.0), ("B", 35.25, -80.5, 50.0)])
    return read_stations(path)


def test_nearest_picks_the_grid_point_and_sets_valid_time(tmp_path: Path, stations: pd.DataFrame) -> None:
    nc = write_netcdf(tmp_path / "f.nc", INITS, LEADS)
    frame = extract_file(nc, _cfg(str(nc)), stations)
    assert len(frame) == 2 * len(INITS) * len(LEADS)
    assert (frame["valid_time"] == frame["init_time"] + pd.to_timedelta(frame["lead_time"], unit="h")).all()
    a = frame[(frame["station"] == "A") & (frame["lead_time"] == 2)].sort_values("init_time")
    expected = [linear_field(np.array(35.0), np.array(-80.0), 2, i) - KELVIN for i in range(2)]
    np.testing.assert_allclose(a["t2m"], expected)  # K in the file, degC in wxops
    b = frame[(frame["station"] == "B") & (frame["lead_time"] == 1)].iloc[0]
    assert b["t2m"] == pytest.approx(linear_field(np.array(35.0), np.array(-80.0), 1, 0) - KELVIN)


def test_bilinear_reproduces_a_linear_field(tmp_path: Path, stations: pd.DataFrame) -> None:
    nc = write_netcdf(tmp_path / "f.nc", INITS, LEADS)
    frame = extract_file(nc, _cfg(str(nc), interpolation="bilinear"), stations)
    b = frame[frame["station"] == "B"].sort_values(["init_time", "lead_time"])
    expected = [linear_field(np.array(35.25), np.array(-80.5), h, i) - KELVIN
                for i in range(2) for h in LEADS]
    np.testing.assert_allclose(b["t2m"], expected, rtol=0, atol=1e-4)


def test_dimension_names_of_other_producers_are_mapped(tmp_path: Path, stations: pd.DataFrame) -> None:
    names = {"init_time": "forecast_reference_time", "lead_time": "step", "lat": "latitude",
             "lon": "longitude"}
    nc = write_netcdf(tmp_path / "cf.nc", INITS, LEADS, names=names)
    plain = extract_file(write_netcdf(tmp_path / "p.nc", INITS, LEADS), _cfg("x"), stations)
    mapped = extract_file(nc, _cfg(str(nc)), stations)
    pd.testing.assert_frame_equal(plain, mapped)


def test_curvilinear_grid_with_2d_coordinates(tmp_path: Path, stations: pd.DataFrame) -> None:
    ds = make_dataset(INITS, LEADS)
    # Same values on a grid whose axes are plain indices and lat/lon are 2-D coordinates.
    lat2, lon2 = np.meshgrid(ds["lat"].values, ds["lon"].values, indexing="ij")
    curvi = ds.rename({"lat": "y", "lon": "x"}).drop_vars(["y", "x"]).assign_coords(
        lat=(("y", "x"), lat2), lon=(("y", "x"), lon2))
    path = tmp_path / "curvi.nc"
    curvi.to_netcdf(path)
    for method in ("nearest", "bilinear"):
        regular = extract_file(write_netcdf(tmp_path / "r.nc", INITS, LEADS), _cfg("r", interpolation=method),
                               stations)
        got = extract_file(path, _cfg(str(path), interpolation=method), stations)
        np.testing.assert_allclose(got["t2m"], regular["t2m"], atol=1e-4)


def test_height_correction_uses_the_model_orography(tmp_path: Path, stations: pd.DataFrame) -> None:
    nc = write_netcdf(tmp_path / "f.nc", INITS, LEADS, orography=True)
    raw = extract_file(nc, _cfg(str(nc)), stations)
    corrected = extract_file(nc, _cfg(str(nc), height_correction=True), stations)
    # Model height at 35N is 100 m, the stations are at 50 m: 50 m lower is 0.325 K warmer.
    np.testing.assert_allclose(corrected["t2m"] - raw["t2m"], 0.0065 * 50.0)
    with pytest.raises(NWPDataError, match=r"f2\.nc.*orography"):
        plain = write_netcdf(tmp_path / "f2.nc", INITS, LEADS)
        extract_file(plain, _cfg(str(plain), height_correction=True), stations)


def test_zarr_reads_like_netcdf(tmp_path: Path, stations: pd.DataFrame) -> None:
    store = tmp_path / "f.zarr"
    make_dataset(INITS, LEADS).to_zarr(store)
    nc = extract_file(write_netcdf(tmp_path / "f.nc", INITS, LEADS), _cfg("x"), stations)
    zr = extract_file(store, _cfg(str(store), source="zarr"), stations)
    pd.testing.assert_frame_equal(nc, zr)


def test_grib_reads_like_netcdf(tmp_path: Path, stations: pd.DataFrame) -> None:
    grib = write_grib(tmp_path / "f.grib2", INITS, LEADS)
    got = extract_file(grib, _cfg(str(grib), source="grib", interpolation="bilinear"), stations)
    nc = extract_file(write_netcdf(tmp_path / "f.nc", INITS, LEADS),
                      _cfg("x", interpolation="bilinear"), stations)
    np.testing.assert_allclose(got["t2m"], nc["t2m"], atol=0.01)  # GRIB packing precision
    assert (got["valid_time"] == nc["valid_time"]).all()


def test_missing_variable_names_file_and_variable(tmp_path: Path, stations: pd.DataFrame) -> None:
    nc = write_netcdf(tmp_path / "f.nc", INITS, LEADS)
    with pytest.raises(NWPDataError, match=r"f\.nc: variable 'msl' not in the file"):
        extract_file(nc, _cfg(str(nc), variables=["t2m", "msl"]), stations)


def test_wrong_units_are_an_error(tmp_path: Path, stations: pd.DataFrame) -> None:
    nc = write_netcdf(tmp_path / "f.nc", INITS, LEADS, units="degF")
    with pytest.raises(NWPDataError, match=r"f\.nc: variable 't2m' has units 'degF', expected 'K'"):
        extract_file(nc, _cfg(str(nc), units={"t2m": "K"}), stations)


def test_station_outside_the_grid(tmp_path: Path) -> None:
    far = read_stations(write_stations(tmp_path / "s.csv", [("A", 35.0, -80.0, 0.0),
                                                            ("FAR", 50.0, -80.0, 0.0)]))
    nc = write_netcdf(tmp_path / "f.nc", INITS, LEADS)
    with pytest.raises(NWPDataError, match=r"f\.nc: station 'FAR' .* outside the grid"):
        extract_file(nc, _cfg(str(nc)), far)


@pytest.mark.parametrize("kind", ["netcdf", "grib"])
def test_truncated_file_is_a_clear_error(tmp_path: Path, stations: pd.DataFrame, kind: str) -> None:
    if kind == "grib":
        path = truncate(write_grib(tmp_path / "f.grib2", INITS, LEADS), 0.55)
    else:
        path = truncate(write_netcdf(tmp_path / "f.nc", INITS, LEADS), 0.6)
    with pytest.raises(NWPDataError, match=rf"{path.name}.*(truncated|cannot open)"):
        extract_file(path, _cfg(str(path), source=kind), stations)


def _chunk_setup(tmp_path: Path, files: list[Path]) -> list:
    stations = read_stations(write_stations(tmp_path / "s.csv", [("A", 35.0, -80.0, 0.0),
                                                                 ("B", 36.0, -79.0, 0.0)]))
    obs = write_obs(tmp_path / "obs.parquet", ["A", "B"], "2024-01-01", 48)
    nwp = _cfg(str(files[0]), variables=["t2m", "d2m"], chunk_stations=1)
    obs_cfg = StationObsConfig(path=obs)
    out = tmp_path / "parts"
    out.mkdir()
    return plan_chunks(files, stations, nwp, obs_cfg, "t2m", out)


def test_chunks_join_observation_at_valid_time(tmp_path: Path) -> None:
    files = [write_netcdf(tmp_path / "a.nc", INITS, LEADS),
             write_netcdf(tmp_path / "b.nc", INITS + pd.Timedelta("12h"), LEADS)]
    tasks = _chunk_setup(tmp_path, files)
    assert len(tasks) == 2
    results = [build_chunk(t) for t in tasks]
    table = pd.concat([pd.read_parquet(r.path) for r in results])
    assert len(table) == 2 * 4 * len(LEADS) and sum(r.rows for r in results) == len(table)
    row = table[(table["station"] == "B")].iloc[0]
    valid = row["valid_time"]
    hours = (valid - pd.Timestamp("2024-01-01", tz="UTC")).total_seconds() / 3600
    assert row["y"] == pytest.approx(15.0 + 1 + hours % 24)
    np.testing.assert_allclose(table["nwp_t2m"], table["t2m"])  # raw NWP reference kept
    assert {"station", "init_time", "lead_time", "valid_time", "t2m", "d2m", "y"} <= set(table.columns)


def test_failed_chunk_leaves_no_partial_partition(tmp_path: Path) -> None:
    files = [write_netcdf(tmp_path / "a.nc", INITS, LEADS),
             truncate(write_netcdf(tmp_path / "b.nc", INITS + pd.Timedelta("12h"), LEADS), 0.6)]
    task = _chunk_setup(tmp_path, files)[0]
    with pytest.raises(NWPDataError, match=r"b\.nc"):
        build_chunk(task)
    assert list((tmp_path / "parts").iterdir()) == []


def test_init_time_split_has_no_valid_time_in_two_splits() -> None:
    inits = pd.date_range("2024-01-01", "2024-06-30 18:00", freq="6h", tz="UTC")
    leads = np.arange(1, 49, 6)
    grid = pd.MultiIndex.from_product([inits, leads], names=["init_time", "lead_time"]).to_frame(index=False)
    grid["valid_time"] = grid["init_time"] + pd.to_timedelta(grid["lead_time"], unit="h")
    grid["block"] = block_labels(grid["init_time"], "month")
    split = split_by_init_time(grid, SplitConfig(cycle=3))
    sets = {n: set(getattr(split, n)["valid_time"]) for n in ("train", "validation", "test")}
    assert not sets["train"] & sets["validation"]
    assert not sets["train"] & sets["test"]
    assert not sets["validation"] & sets["test"]
    assert split.rows_in_gaps > 0  # forecasts crossing into another split's month were dropped
    # Without the valid-time guard, a plain block split would leak: check the data can.
    by_block = {r: set(grid.loc[grid["block"].map(split.assignment) == r, "valid_time"])
                for r in ("train", "test")}
    assert by_block["train"] & by_block["test"]


def test_observations_with_naive_utc_times(tmp_path: Path) -> None:
    files = [write_netcdf(tmp_path / "a.nc", INITS, LEADS)]
    task = _chunk_setup(tmp_path, files)[0]
    obs = pd.read_parquet(task.obs.path)
    obs["time"] = obs["time"].dt.tz_localize(None)
    obs.to_parquet(task.obs.path)
    result = build_chunk(task)
    assert result.rows == len(INITS) * len(LEADS)


def test_tasks_split_by_stations_and_files(tmp_path: Path) -> None:
    files = [write_netcdf(tmp_path / f"{k}.nc", INITS + pd.Timedelta(hours=12 * k), LEADS) for k in range(3)]
    tasks = _chunk_setup(tmp_path, files)  # chunk_stations=1, all files per task
    assert [len(t.files) for t in tasks] == [3, 3]
    nwp = tasks[0].nwp.model_copy(update={"chunk_files": 2})
    stations = pd.DataFrame([*tasks[0].stations, *tasks[1].stations])
    split = plan_chunks(files, stations, nwp, tasks[0].obs, "t2m", tmp_path / "parts")
    assert [(t.stations[0]["id"], len(t.files)) for t in split] == [("A", 2), ("A", 1), ("B", 2), ("B", 1)]
    rows = sum(build_chunk(t).rows for t in split)
    assert rows == 2 * 3 * len(INITS) * len(LEADS)
