import numpy as np
import pandas as pd
import pytest

from wxops import DataQualityError, DataSourceError
from wxops.config import QCConfig
from wxops.data.qc import QC_RULES, VARIABLES, apply_qc, check_target


def _tiny() -> pd.DataFrame:
    time = pd.date_range("2021-01-01", periods=40, freq="h", tz="UTC")
    return pd.DataFrame({
        "time": time,
        "t2m": np.linspace(0, 10, 40),
        "visibility": np.full(40, 10000.0),
    })


def test_each_rule_is_counted_and_dropped() -> None:
    frame = _tiny()
    frame.loc[1, "t2m"] = -9900.0  # sentinel (and so missing)
    frame.loc[2, "t2m"] = 75.0  # out of range
    frame.loc[3, "visibility"] = np.nan  # missing
    frame.loc[5, "time"] = frame.loc[4, "time"]  # duplicate timestamp
    frame.loc[10:35, "t2m"] = 4.2  # stuck sensor, 26 hours
    frame = frame.drop(index=[38])  # a 2 h gap: below max_gap_hours=3, not counted
    frame = frame.drop(index=[20, 21, 22, 23])  # a 5 h gap inside the stuck run
    clean, report = apply_qc(frame, ["t2m", "visibility"], QCConfig(max_drop_share=1.0))
    assert report.rows_flagged["sentinel"] == 1
    assert report.rows_flagged["missing"] == 2
    assert report.rows_flagged["range"] == 1
    assert report.rows_flagged["duplicate_time"] == 1
    assert report.rows_flagged["constant_run"] == 22
    assert report.by_column["missing"] == {"t2m": 1, "visibility": 1}
    assert report.gaps == 1 and report.gap_hours_missing == 4.0
    assert report.rows_out == len(clean) == report.rows_in - (1 + 1 + 1 + 1 + 22)
    assert clean["t2m"].between(*[VARIABLES["t2m"].low, VARIABLES["t2m"].high]).all()
    assert set(report.to_dict()["rows_flagged"]) | {"gap"} == set(QC_RULES)


def test_keep_marks_rows_instead_of_dropping() -> None:
    frame = _tiny()
    frame.loc[2, "t2m"] = 75.0
    frame.loc[1, "t2m"] = -9999.0
    kept, report = apply_qc(frame, ["t2m", "visibility"], QCConfig(action="keep"))
    assert len(kept) == len(frame) == report.rows_out
    assert kept.loc[2, "qc_flags"] == "range"
    assert kept.loc[1, "qc_flags"] == "sentinel,missing"
    assert np.isnan(kept.loc[1, "t2m"])  # sentinels become NaN even when kept
    assert kept.loc[0, "qc_flags"] == ""


def test_range_override() -> None:
    frame = _tiny()
    _, report = apply_qc(frame, ["t2m"], QCConfig(ranges={"t2m": (0.0, 5.0)}))
    assert report.rows_flagged["range"] == int((frame["t2m"] > 5).sum())


def test_bad_input() -> None:
    with pytest.raises(DataSourceError, match=r"lacks the columns \['rh'\]"):
        apply_qc(_tiny(), ["t2m", "rh"], QCConfig())
    frame = _tiny().astype({"t2m": object})
    frame.loc[3, "t2m"] = "warm"
    with pytest.raises(DataSourceError, match="'t2m' holds non-numeric values such as 'warm'"):
        apply_qc(frame, ["t2m"], QCConfig())
    frame = _tiny()
    frame["visibility"] = -9900.0
    clean, _ = apply_qc(frame, ["visibility"], QCConfig(action="keep"))
    with pytest.raises(DataQualityError, match="target 'visibility' has no valid value"):
        check_target(clean, "visibility")


def _station_obs() -> pd.DataFrame:
    """Two stations, 30 hours of 2 m temperature each (degC) as ``read_station_obs`` gives."""
    time = pd.date_range("2024-01-01", periods=30, freq="h", tz="UTC")
    frames = [pd.DataFrame({"station": s, "valid_time": time, "obs": np.linspace(0, 5, 30) + k})
              for k, s in enumerate(("A", "B"))]
    return pd.concat(frames, ignore_index=True)


def test_nwp_observations_follow_the_same_qc_rules_and_settings() -> None:
    from wxops.data.nwp_table import clean_obs

    obs = _station_obs()
    obs.loc[1, "obs"] = -9999.0  # sentinel
    obs.loc[2, "obs"] = 45.0  # inside the default range, outside qc.ranges below
    obs.loc[3, "obs"] = np.nan  # missing
    obs.loc[31:, "obs"] = 7.0  # station B stuck for 29 hours
    obs = pd.concat([obs, obs.iloc[[5]]], ignore_index=True)  # a repeated (station, time)
    cfg = QCConfig(ranges={"t2m": (-40.0, 40.0)}, max_constant_hours=24)
    clean, counts = clean_obs(obs, "t2m", cfg)
    assert counts == {"sentinel": 1, "missing": 2, "range": 1, "bad_time": 0,
                      "duplicate_time": 1, "constant_run": 29}
    assert len(clean) == len(obs) - (1 + 1 + 1 + 1 + 29)
    assert set(clean["station"]) == {"A", "B"} and clean["obs"].max() < 40
    # station A's values are a line, B's run is at one station only: A is never "stuck"
    assert (clean["station"] == "A").sum() == 30 - 3
    # the same table without the override: 45 degC is in wxops' physical range
    assert clean_obs(obs, "t2m", QCConfig())[1]["range"] == 0


def test_nwp_observations_keep_mode_keeps_usable_values_with_their_flags() -> None:
    from wxops.data.nwp_table import clean_obs

    obs = _station_obs()
    obs.loc[2, "obs"] = 75.0
    obs.loc[3, "obs"] = -9900.0
    kept, counts = clean_obs(obs, "t2m", QCConfig(action="keep"))
    assert counts["range"] == 1 and counts["sentinel"] == 1
    assert len(kept) == len(obs) - 1  # the sentinel cannot be joined; the range value stays
    assert kept.loc[kept["obs"] == 75.0, "qc_flags"].tolist() == ["range"]


def test_nwp_observations_beyond_max_drop_share_stop_naming_the_rule() -> None:
    from wxops.data.nwp_table import NWPQCReport, check_drop_share

    report = NWPQCReport(obs_rows=100, obs_dropped={"range": 70, "missing": 5},
                         rows_without_obs=0, rows=25, obs_removed=75)
    with pytest.raises(DataQualityError, match=r"QC removes 75 of 100 observations of 't2m'.*"
                                               r"rule range: 70 rows.*qc\.max_drop_share"):
        check_drop_share(report, QCConfig(max_drop_share=0.5), "t2m")
    check_drop_share(report, QCConfig(max_drop_share=0.8), "t2m")  # within the share


def test_qc_table_documents_every_rule() -> None:
    from wxops.data.qc import QC_TABLE

    assert tuple(QC_TABLE) == QC_RULES
    assert all(rule.flags and rule.applies_to in ("values", "time") for rule in QC_TABLE.values())
