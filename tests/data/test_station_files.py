"""Other station files: edge cases derived from the reference TMY3 year, a TMY2 file, units,
missing markers and local times; each either reads correctly or stops naming the cause."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from tests.conftest import small_config_dict, write_config
from tests.data.station_files import tmy2_from_reference, tmy3_variant
from wxops import DataQualityError, DataSourceError
from wxops.config import DataConfig, FeaturesConfig, QCConfig, parse_config
from wxops.data.qc import apply_qc, check_target, features_after_qc
from wxops.data.sources import default_tmy3_path, read_source

USED = ["visibility", *FeaturesConfig().predictors]


def _qc(frame: pd.DataFrame, **qc: object) -> tuple[pd.DataFrame, object]:
    return apply_qc(frame, USED, QCConfig(**qc), target="visibility")  # type: ignore[arg-type]


def _tmy3(path: Path, **kw: object) -> DataConfig:
    return DataConfig(source="tmy3", path=path, **kw)  # type: ignore[arg-type]


def test_tmy3_without_present_weather_reads(tmp_path: Path) -> None:
    path = tmy3_variant(tmp_path / "nopw.csv",
                        lambda t: t.drop(columns=["PresWth (METAR code)", "PresWth source",
                                                  "PresWth uncert (code)"]))
    frame = read_source(_tmy3(path))
    assert "present_weather" not in frame.columns and len(frame) == 8760
    clean, report = _qc(frame)
    assert len(clean) == report.rows_out > 8000
    assert report.source["absent_columns"] == ["PresWth (METAR code)"]


def test_tmy3_without_a_used_column_names_it(tmp_path: Path) -> None:
    path = tmy3_variant(tmp_path / "nopressure.csv", lambda t: t.drop(columns=["Pressure (mbar)"]))
    frame = read_source(_tmy3(path))
    with pytest.raises(DataSourceError, match=r"lacks the columns \['pressure'\].*features\.predictors"):
        _qc(frame)


def test_stuck_predictor_is_dropped_with_a_message(tmp_path: Path) -> None:
    path = tmy3_variant(tmp_path / "stuck.csv", lambda t: t.assign(**{"Pressure (mbar)": "1013"}))
    frame = read_source(_tmy3(path))
    clean, report = _qc(frame)
    assert report.rows_out == len(clean) > 8000  # the year is kept
    assert report.columns_dropped == {"pressure": {"rule": "constant_run", "rows": 8760,
                                                   "file_column": "Pressure (mbar)"}}
    assert "'pressure' (file column 'Pressure (mbar)'): rule constant_run flags 8760 of 8760" \
        in report.messages[0]
    assert "pressure" not in clean.columns
    features = features_after_qc(FeaturesConfig(), report)
    assert "pressure" not in features.predictors and "t2m" in features.predictors
    with pytest.raises(DataQualityError,
                       match=r"predictor 'pressure' \(file column 'Pressure \(mbar\)'\): rule "
                             r"constant_run flags 8760 of 8760 rows: the value never changes"):
        _qc(frame, column_action="refuse")


def test_stuck_temperature_also_drops_the_derived_features(tmp_path: Path) -> None:
    path = tmy3_variant(tmp_path / "stuck_t.csv", lambda t: t.assign(**{"Dry-bulb (C)": "10.0"}))
    _, report = _qc(read_source(_tmy3(path)))
    features = features_after_qc(FeaturesConfig(), report)
    assert "t2m" not in features.predictors
    assert "dewpoint_depression" not in features.derived and "cyclic_time" in features.derived


def test_all_sentinels_in_one_column(tmp_path: Path) -> None:
    path = tmy3_variant(tmp_path / "sentinel.csv", lambda t: t.assign(**{"RHum (%)": "-9900"}))
    clean, report = _qc(read_source(_tmy3(path)))
    assert report.columns_dropped["rh"]["rule"] == "sentinel"
    assert report.columns_dropped["rh"]["rows"] == 8760 and len(clean) > 8000


def test_target_all_sentinels_stops_naming_column_and_rule(tmp_path: Path) -> None:
    path = tmy3_variant(tmp_path / "novis.csv", lambda t: t.assign(**{"Hvis (m)": "-9900"}))
    with pytest.raises(DataQualityError, match=r"rule sentinel in 'visibility' \(file column "
                                               r"'Hvis \(m\)'\): 8760 rows"):
        _qc(read_source(_tmy3(path)))
    clean, report = _qc(read_source(_tmy3(path)), action="keep")
    with pytest.raises(DataQualityError, match=r"rule sentinel in column 'visibility': 8760"):
        check_target(clean, "visibility", report)  # type: ignore[arg-type]


def test_empty_year(tmp_path: Path) -> None:
    path = tmy3_variant(tmp_path / "empty.csv", lambda t: t.iloc[:0])
    with pytest.raises(DataSourceError, match=r"holds no rows|not a readable TMY3"):
        read_source(_tmy3(path))


def test_fahrenheit_is_detected_and_declared_units_convert(tmp_path: Path) -> None:
    def to_f(t: pd.DataFrame) -> pd.DataFrame:
        celsius = t["Dry-bulb (C)"].astype(float)
        return t.assign(**{"Dry-bulb (C)": (celsius * 9 / 5 + 32).round(2).astype(str)})

    path = tmy3_variant(tmp_path / "fahrenheit.csv", to_f)
    with pytest.raises(DataQualityError, match=r"'t2m' \(file column 'Dry-bulb \(C\)'\).*"
                                               r"are the units degF\?"):
        _qc(read_source(_tmy3(path)), max_column_share=1.0)
    # the column as a whole: the share of rows beyond 60 "degC" names the cause too
    reference = read_source(DataConfig())
    fixed = read_source(_tmy3(path, units={"t2m": "degF"}))
    np.testing.assert_allclose(fixed["t2m"], reference["t2m"], atol=0.01)
    assert fixed.attrs["wxops"]["units"] == {"t2m": "degF -> degC"}


def test_tmy2_written_by_the_test(tmp_path: Path) -> None:
    path, written = tmy2_from_reference(tmp_path / "greensboro.tm2")
    frame = read_source(DataConfig(source="tmy2", path=path))
    assert len(frame) == 8760 and str(frame["time"].dt.tz) == "UTC"
    for col in written.columns:
        np.testing.assert_allclose(frame[col], written[col], atol=1e-6, err_msg=col)
    assert frame["block"].nunique() == 12
    clean, report = _qc(frame)
    assert report.rows_out == len(clean) > 8000
    with pytest.raises(DataSourceError, match=r"looks like a TMY2 file: set data\.source: tmy2"):
        read_source(_tmy3(path))
    with pytest.raises(DataSourceError, match="not a readable TMY2 file"):
        read_source(DataConfig(source="tmy2", path=default_tmy3_path()))


def test_tmy2_shipped_with_pvlib() -> None:
    path = default_tmy3_path().parent / "12839.tm2"
    frame = read_source(DataConfig(source="tmy2", path=path))
    assert frame.attrs["wxops"]["missing_markers"]["visibility"] == 992  # code 9999
    assert frame["t2m"].between(0, 40).all() and frame["visibility"].max() <= 100_000
    _, report = _qc(frame)
    assert report.rows_flagged["missing"] == 992


def _asos_csv(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """The reference year as an ASOS/METAR export: degF, knots, inHg, statute miles, 'M'."""
    ref = read_source(DataConfig())
    out = pd.DataFrame({
        "valid": ref["time"].dt.tz_localize(None).dt.strftime("%Y-%m-%d %H:%M"),
        "tmpf": (ref["t2m"] * 9 / 5 + 32).round(3).astype(str),
        "dwpf": (ref["td2m"] * 9 / 5 + 32).round(3).astype(str),
        "sknt": (ref["wind_speed"] / 0.514444).round(4).astype(str),
        "alti": (ref["pressure"] / 33.8639).round(5).astype(str),
        "vsby": (ref["visibility"] / 1609.344).round(5).astype(str),
    })
    out.loc[[5, 6, 7], "tmpf"] = "M"
    out.loc[[8], "vsby"] = "M"
    path = tmp_path / "asos.csv"
    out.to_csv(path, index=False)
    return path, ref


def test_asos_units_and_missing_markers(tmp_path: Path) -> None:
    path, ref = _asos_csv(tmp_path)
    cfg = DataConfig(source="table", path=path, time_column="valid",
                     columns={"tmpf": "t2m", "dwpf": "td2m", "sknt": "wind_speed",
                              "alti": "pressure", "vsby": "visibility"},
                     units={"tmpf": "degF", "td2m": "degF", "wind_speed": "knot",
                            "pressure": "inHg", "visibility": "mile"},
                     na_values={"tmpf": ["M"], "visibility": ["M"]})
    frame = read_source(cfg)
    np.testing.assert_allclose(frame["visibility"].drop(index=8), ref["visibility"].drop(index=8),
                               atol=0.05)  # 5 decimals of a mile
    np.testing.assert_allclose(frame["pressure"], ref["pressure"], rtol=1e-5)
    np.testing.assert_allclose(frame["wind_speed"], ref["wind_speed"], atol=1e-3)
    assert frame["t2m"].isna().sum() == 3
    notes = frame.attrs["wxops"]
    assert notes["missing_markers"] == {"t2m": 3, "visibility": 1}
    assert notes["file_columns"]["t2m"] == "tmpf"
    _, report = apply_qc(frame, ["visibility", "t2m", "td2m", "wind_speed", "pressure"],
                         QCConfig(), target="visibility")
    assert report.rows_flagged["missing"] == 4 and report.source["units"]["visibility"] == \
        "mile -> m"
    # undeclared: the 'M' stops the run with the column and the fix
    bare = cfg.model_copy(update={"na_values": [], "units": {}})
    with pytest.raises(DataSourceError, match=r"'visibility' \(file column 'vsby'\) holds non-numeric "
                                              r"values such as 'M'.*data\.na_values"):
        apply_qc(read_source(bare), ["visibility", "t2m"], QCConfig(), target="visibility")
    with pytest.raises(DataSourceError, match=r"unknown unit 'bananas'"):
        read_source(cfg.model_copy(update={"units": {"t2m": "bananas"}}))
    with pytest.raises(DataSourceError, match=r"cannot convert 'knot' to wxops' unit 'degC'"):
        read_source(cfg.model_copy(update={"units": {"t2m": "knot"}}))
    with pytest.raises(DataSourceError, match=r"data\.units names columns \['nosuch'\]"):
        read_source(cfg.model_copy(update={"units": {"nosuch": "m"}}))
    with pytest.raises(DataSourceError, match=r"data\.na_values names column 'nosuch'"):
        read_source(cfg.model_copy(update={"na_values": {"nosuch": ["M"]}}))


def test_undeclared_units_are_caught_even_within_range(tmp_path: Path) -> None:
    """Visibility in statute miles passes the range rule value by value; its median does not."""
    path, _ = _asos_csv(tmp_path)
    cfg = DataConfig(source="table", path=path, time_column="valid", na_values=["M"],
                     columns={"tmpf": "t2m", "vsby": "visibility"}, units={"t2m": "degF"})
    with pytest.raises(DataQualityError, match=r"'visibility' \(file column 'vsby'\): median 9\.9\d* m is "
                                               r"implausible.*are the units mile or km\?"):
        apply_qc(read_source(cfg), ["visibility", "t2m"], QCConfig(), target="visibility")
    bare = cfg.model_copy(update={"units": {"visibility": "mile"}})
    with pytest.raises(DataQualityError, match=r"'t2m' \(file column 'tmpf'\): median .* are the "
                                               r"units degF\?"):
        apply_qc(read_source(bare), ["visibility", "t2m"], QCConfig(), target="visibility")
    # values that are right after all: qc.ranges for the column switches the check off
    clean, _ = apply_qc(read_source(cfg), ["visibility", "t2m"],
                        QCConfig(ranges={"visibility": (0.0, 20.0)}), target="visibility")
    assert len(clean) > 8000


def test_netcdf_cf_units_and_float32(tmp_path: Path, obs: pd.DataFrame) -> None:
    ds = xr.Dataset(
        {"t2m": ("time", (obs["t2m"] + 273.15).to_numpy(np.float32), {"units": "K"}),
         "wspd": ("time", obs["wind_speed"].to_numpy(np.float32), {"units": "m s-1"}),
         "visibility": ("time", (obs["visibility"] / 1000).to_numpy(np.float32), {"units": "km"})},
        coords={"time": obs["time"].dt.tz_localize(None).to_numpy()},
    )
    ds.to_netcdf(tmp_path / "obs.nc")
    ds.to_zarr(tmp_path / "obs.zarr")
    for source, name in (("netcdf", "obs.nc"), ("zarr", "obs.zarr")):
        frame = read_source(DataConfig(source=source, path=tmp_path / name,
                                       columns={"wspd": "wind_speed"}))
        np.testing.assert_allclose(frame["t2m"], obs["t2m"], atol=1e-4)
        np.testing.assert_allclose(frame["visibility"], obs["visibility"], rtol=1e-5)
        assert {frame[c].dtype for c in ("t2m", "wind_speed", "visibility")} == {np.dtype("float64")}
        assert frame.attrs["wxops"]["units"] == {"t2m": "K -> degC", "visibility": "km -> m"}
    with pytest.raises(DataSourceError, match=r"says units 'K' in the file but data\.units says "
                                              r"'degC'"):
        read_source(DataConfig(source="netcdf", path=tmp_path / "obs.nc", units={"t2m": "degC"}))


def _local_csv(tmp_path: Path, times: list[str]) -> Path:
    n = len(times)
    pd.DataFrame({"time": times, "t2m": np.linspace(5, 6, n),
                  "visibility": np.full(n, 9000.0)}).to_csv(tmp_path / "local.csv", index=False)
    return tmp_path / "local.csv"


def test_local_times_with_daylight_saving(tmp_path: Path) -> None:
    # New York: 2021-11-07 01:00-01:59 happens twice; 2021-03-14 02:00-02:59 never happens
    autumn = pd.date_range("2021-11-07 00:00", "2021-11-07 04:00", freq="h", tz="America/New_York")
    times = [t.strftime("%Y-%m-%d %H:%M") for t in autumn]
    assert times.count("2021-11-07 01:00") == 2
    spring = ["2021-03-14 00:00", "2021-03-14 01:00", "2021-03-14 03:00", "2021-03-14 04:00"]
    path = _local_csv(tmp_path, spring + times)
    frame = read_source(DataConfig(source="table", path=path, timezone="America/New_York"))
    assert frame["time"].is_monotonic_increasing and not frame["time"].duplicated().any()
    assert (frame["time"].diff().dropna() <= pd.Timedelta(hours=1)).sum() == len(frame) - 2
    notes = frame.attrs["wxops"]["local_time"]
    assert notes["ambiguous_rows"] == 2 and notes["nonexistent_rows"] == 0
    _, report = apply_qc(frame, ["visibility", "t2m"], QCConfig(), target="visibility")
    assert report.rows_flagged["duplicate_time"] == 0 and report.gaps == 1  # Mar -> Nov
    # taken as UTC (no timezone): the repeated hour is a duplicate, said in the report
    naive = read_source(DataConfig(source="table", path=path))
    _, report = apply_qc(naive, ["visibility", "t2m"], QCConfig(), target="visibility")
    assert report.rows_flagged["duplicate_time"] == 1
    assert "taken as UTC" in report.source["time"]
    # a time that does not exist, and a repeated hour the order cannot resolve
    odd = _local_csv(tmp_path, ["2021-03-14 01:00", "2021-03-14 02:30", "2021-03-14 03:00",
                                "2021-11-07 01:30"])
    frame = read_source(DataConfig(source="table", path=odd, timezone="America/New_York"))
    _, report = apply_qc(frame, ["visibility", "t2m"], QCConfig(max_drop_share=1.0),
                         target="visibility")
    assert report.rows_flagged["bad_time"] == 2
    assert report.source["local_time"]["nonexistent_rows"] == 1
    assert report.source["local_time"]["ambiguous_unresolved"] == 1


def test_a_local_year_gives_local_month_blocks(tmp_path: Path) -> None:
    from wxops.config import SplitConfig
    from wxops.split import assign_blocks

    local = pd.date_range("2021-01-01 00:00", "2021-12-31 23:00", freq="h", tz="America/New_York")
    path = _local_csv(tmp_path, [t.strftime("%Y-%m-%d %H:%M") for t in local])
    frame = read_source(DataConfig(source="table", path=path, timezone="America/New_York"))
    clean, report = apply_qc(frame, ["visibility", "t2m"], QCConfig(), target="visibility")
    blocks = assign_blocks(clean, SplitConfig())["block"].value_counts()
    assert len(blocks) == 12 and blocks["2021-01"] == 31 * 24  # no 5-row stray "2022-01"
    assert report.gaps == 0 and report.rows_flagged["duplicate_time"] == 0


def test_bad_time_and_zone_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_config({"data": {"source": "table", "path": "x.csv", "timezone": "Mars/Olympus"}})
    path = tmp_path / "epoch.csv"
    pd.DataFrame({"time": [1, 2], "visibility": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.raises(DataSourceError, match="holds numbers, not times"):
        read_source(DataConfig(source="table", path=path))


def _wxops(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("wxops")
    return subprocess.run([str(exe), *args], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "HOME": str(folder)}, timeout=600)


@pytest.mark.slow
def test_wxops_run_trains_without_a_stuck_predictor(tmp_path: Path) -> None:
    """Journey 1 on another station: a stuck pressure sensor, and a file in degF."""
    tmy3_variant(tmp_path / "stuck.csv", lambda t: t.assign(**{"Pressure (mbar)": "1013"}))
    write_config(tmp_path, small_config_dict(models=[{"name": "ridge", "type": "linear"}],
                                             data={"source": "tmy3", "path": "stuck.csv"}))
    done = _wxops(tmp_path, "run", "-c", "wxops.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join((done.stdout + done.stderr).split())
    assert "predictor 'pressure' (file column 'Pressure (mbar)'): rule constant_run flags 8760" in out
    qc = json.loads((tmp_path / "wxops-out" / "lineage.json").read_text())["qc"]
    assert qc["columns_dropped"]["pressure"]["rule"] == "constant_run"
    assert qc["rows_out"] > 8000
    # the logged model's signature (read from its MLmodel file: no process-wide MLflow URI)
    mlmodel = next(p for p in (tmp_path / "mlartifacts").rglob("MLmodel"))
    inputs = json.loads(yaml.safe_load(mlmodel.read_text())["signature"]["inputs"])
    names = [c["name"] for c in inputs]
    assert "pressure" not in names and "t2m" in names
    assert {c["type"] for c in inputs if c["name"] != "time"} == {"double"}

    def to_f(t: pd.DataFrame) -> pd.DataFrame:
        return t.assign(**{"Dry-bulb (C)": (t["Dry-bulb (C)"].astype(float) * 1.8 + 32).astype(str)})

    other = tmp_path / "f"
    other.mkdir()
    tmy3_variant(other / "f.csv", to_f)
    write_config(other, small_config_dict(models=[{"name": "ridge", "type": "linear"}],
                                          data={"source": "tmy3", "path": "f.csv",
                                                "qc": {"column_action": "refuse"}}))
    done = _wxops(other, "run", "-c", "wxops.yaml")
    assert done.returncode != 0
    out = " ".join((done.stdout + done.stderr).split())
    assert "'t2m' (file column 'Dry-bulb (C)')" in out and "are the units degF?" in out
    assert "Traceback" not in out


def test_float32_and_float64_inputs_give_one_signature_type(obs: pd.DataFrame) -> None:
    from mlflow.models import infer_signature

    from wxops.models.task import input_example

    frame = obs[["time", "t2m", "td2m"]]
    types = []
    for dtype in ("float32", "float64"):
        example = input_example(frame.astype({"t2m": dtype, "td2m": dtype}))
        types.append({c["name"]: c["type"] for c in infer_signature(example).inputs.to_dict()})
    assert types[0] == types[1] and types[0]["t2m"] == "double"


@pytest.mark.slow
def test_wxops_run_on_a_year_without_fog_explains_undefined_scores(tmp_path: Path) -> None:
    """Journey 1 on a station without events below 1000 m: the report says why POD, CSI,
    ETS and frequency bias are undefined there, instead of a dash."""
    def no_fog(t: pd.DataFrame) -> pd.DataFrame:
        vis = t["Hvis (m)"].astype(float)
        return t.assign(**{"Hvis (m)": vis.where(vis >= 1000, 1600).astype(int).astype(str)})

    tmy3_variant(tmp_path / "nofog.csv", no_fog)
    write_config(tmp_path, small_config_dict(models=[{"name": "ridge", "type": "linear"}],
                                             data={"source": "tmy3", "path": "nofog.csv"}))
    done = _wxops(tmp_path, "run", "-c", "wxops.yaml")
    out = done.stdout + done.stderr
    assert "Traceback" not in out
    page = next((tmp_path / "wxops-out" / "verify").glob("*/index.html")).read_text()
    events = page.split("<h3>Events: below 1000</h3>")[1].split("</table>")[0]
    assert "undefined: no observed events" in events
    assert "–" not in events
