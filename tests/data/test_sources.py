from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from wxops import DataSourceError
from wxops.config import DataConfig
from wxops.data.sources import default_tmy3_path, read_source


def test_tmy3_reference_file() -> None:
    frame = read_source(DataConfig())
    assert len(frame) == 8760
    assert frame["block"].nunique() == 12  # one block per stitched month
    assert str(frame["time"].dt.tz) == "UTC"
    assert (frame["visibility"] < 1000).sum() == 162
    assert {"t2m", "td2m", "present_weather"} <= set(frame.columns)
    assert default_tmy3_path().name == "723170TYA.CSV"


def test_table_csv_and_parquet(tmp_path: Path, obs: pd.DataFrame) -> None:
    renamed = obs.rename(columns={"t2m": "T [C]", "time": "valid"})
    renamed.to_csv(tmp_path / "obs.csv", index=False)
    renamed.to_parquet(tmp_path / "obs.parquet")
    for name in ("obs.csv", "obs.parquet"):
        cfg = DataConfig(source="table", path=tmp_path / name, time_column="valid",
                         columns={"T [C]": "t2m"})
        frame = read_source(cfg)
        assert list(frame.columns[:2]) == ["time", "t2m"]
        np.testing.assert_allclose(frame["t2m"], obs["t2m"])
        assert frame["time"].iloc[0] == obs["time"].iloc[0]


def test_netcdf_and_zarr_station_series(tmp_path: Path, obs: pd.DataFrame) -> None:
    ds = xr.Dataset(
        {c: (("station", "time"), np.stack([obs[c].to_numpy()] * 2)) for c in ("t2m", "visibility")},
        coords={"station": ["A", "B"], "time": obs["time"].dt.tz_localize(None).to_numpy()},
    )
    ds.to_netcdf(tmp_path / "obs.nc")
    ds.to_zarr(tmp_path / "obs.zarr")
    for source, name in (("netcdf", "obs.nc"), ("zarr", "obs.zarr")):
        frame = read_source(DataConfig(source=source, path=tmp_path / name, station="B"))
        assert len(frame) == len(obs)
        np.testing.assert_allclose(frame["visibility"], obs["visibility"])
    with pytest.raises(DataSourceError, match=r"choose one with data\.station"):
        read_source(DataConfig(source="netcdf", path=tmp_path / "obs.nc"))
    with pytest.raises(DataSourceError, match="station 'Z' not in the file"):
        read_source(DataConfig(source="netcdf", path=tmp_path / "obs.nc", station="Z"))


@pytest.mark.parametrize(
    ("name", "content", "source", "match"),
    [
        ("missing.csv", None, "table", "data file not found"),
        ("garbage.csv", b"\x00\xff\xfe\x00binary", "table", "cannot read table|no time column"),
        ("notime.csv", b"a,b\n1,2\n", "table", "no time column 'time'"),
        ("badtime.csv", b"time,a\nyesterday,1\n", "table", "'time' is not a time"),
        ("empty.csv", b"time,visibility\n", "table", "holds no rows"),
        ("data.xlsx", b"x", "table", "unknown table format"),
        ("broken.nc", b"not netcdf", "netcdf", "cannot open netcdf"),
        ("broken.tmy", b"not,a,tmy\n1,2,3\n", "tmy3", "not a readable TMY3 file"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: bytes | None, source: str, match: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataSourceError, match=match):
        read_source(DataConfig(source=source, path=path))  # type: ignore[arg-type]
