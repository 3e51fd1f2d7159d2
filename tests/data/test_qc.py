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
