"""Reference forecasts, the verification table, skill and strata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wxops.errors import VerificationError
from wxops.verify import (
    fit_climatology,
    nwp_forecast,
    persistence_forecast,
    verify_forecasts,
)


def test_climatology_uses_month_and_hour_of_training_rows():
    time = pd.to_datetime(["2024-01-01 00:00", "2024-01-02 00:00", "2024-01-01 06:00",
                           "2024-03-01 00:00"], utc=True)
    train = pd.DataFrame({"time": time, "y": [100.0, 300.0, 50.0, 900.0]})
    clim = fit_climatology(train)
    assert clim.table.at[(1, 0), "value"] == 200.0
    assert clim.table.at[(1, 0), "level"] == "month"
    # February is not in training: the Jan-Feb-Mar window at 00 UTC -> mean(100, 300, 900)
    assert clim.table.at[(2, 0), "value"] == pytest.approx(1300 / 3)
    assert clim.table.at[(2, 0), "level"] == "season"
    # July 06 UTC: no month/season data -> hour 06 of any month
    assert clim.table.at[(7, 6), "value"] == 50.0
    assert clim.table.at[(7, 6), "level"] == "hour"
    # July 12 UTC: nothing at that hour -> training mean
    assert clim.table.at[(7, 12), "level"] == "overall"
    got = clim.predict(pd.Series(pd.to_datetime(["2024-01-05 00:00"], utc=True)))
    np.testing.assert_allclose(got, [200.0])


def test_climatology_keys_by_valid_time_in_lead_mode():
    train = pd.DataFrame({"time": pd.to_datetime(["2024-01-01 00:00"], utc=True), "y": [5.0]})
    clim = fit_climatology(train, valid_offset_hours=3)
    assert clim.table.at[(1, 3), "level"] == "month"


def test_reference_forecasts_refuse_what_they_cannot_do():
    test = pd.DataFrame({"visibility": [1.0, 2.0]})
    np.testing.assert_allclose(persistence_forecast(test, observed_column="visibility",
                                                    lead_time=3), [1.0, 2.0])
    with pytest.raises(VerificationError, match="needs lead-time mode"):
        persistence_forecast(test, observed_column="visibility", lead_time=None)
    with pytest.raises(VerificationError, match="observed 'vis' at issue time"):
        persistence_forecast(test, observed_column="vis", lead_time=3)
    with pytest.raises(VerificationError, match=r"verify\.nwp_column 'nwp_vis' is not"):
        nwp_forecast(test, column="nwp_vis")
    with pytest.raises(VerificationError, match="needs training rows"):
        fit_climatology(pd.DataFrame({"y": [1.0]}))


def test_verify_forecasts_scores_skill_and_strata(hourly):
    clim = fit_climatology(hourly.iloc[:120])
    fc = {"candidate": hourly["good"], "champion": hourly["bad"],
          "climatology": clim.predict(hourly["time"])}
    v = verify_forecasts(fc, hourly["y"], valid_time=hourly["time"], thresholds=[5000.0],
                         lead_time=1, station=np.array(["A", "B"] * 120))
    assert v.sources == ["candidate", "champion", "climatology"]
    assert v.score("candidate", "rmse") < v.score("champion", "rmse")
    expected = 1 - v.score("candidate", "rmse") / v.score("climatology", "rmse")
    assert v.skill.loc[("candidate", "climatology"), "rmse"] == pytest.approx(expected)
    assert ("champion", "candidate") not in v.skill.index
    assert set(v.strata) == {"hour", "month", "season", "lead_time", "station"}
    by_hour = v.strata["hour"]
    assert len(by_hour) == 24 * 3 and by_hour["n"].sum() == 240 * 3
    assert "hits_5000" in v.scores.columns
    doc = v.to_dict()
    assert doc["n"] == 240 and doc["scores"][0]["source"] == "candidate"


def test_verify_forecasts_uses_common_rows_only(hourly):
    bad = hourly["bad"].to_numpy().copy()
    bad[:10] = np.nan
    v = verify_forecasts({"candidate": hourly["good"], "champion": bad}, hourly["y"],
                         valid_time=hourly["time"], thresholds=[5000.0])
    assert v.n == 230 and v.scores["n"].tolist() == [230, 230]
    assert "10 rows" in v.notes[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fcst": {}}, "no forecast to verify"),
        ({"fcst": {"candidate": [1.0, 2.0]}}, "has shape"),
        ({"valid_time": pd.date_range("2024", periods=2, freq="h")}, "valid_time has 2 rows"),
        ({"fcst": {"candidate": [np.nan] * 3}}, "no row where"),
    ],
)
def test_verify_forecasts_bad_input(kwargs, match):
    args = {"fcst": {"candidate": [1.0, 2.0, 3.0]}, "obs": [1.0, 2.0, 3.0],
            "valid_time": pd.date_range("2024", periods=3, freq="h"), "thresholds": [2.0]}
    args.update(kwargs)
    with pytest.raises(VerificationError, match=match):
        verify_forecasts(args.pop("fcst"), args.pop("obs"), **args)


def test_climatology_caps_alike_and_holds_event_frequencies_per_station():
    time = pd.to_datetime(["2024-01-01 00:00", "2024-01-02 00:00", "2024-01-03 00:00",
                           "2024-01-01 00:00"], utc=True)
    train = pd.DataFrame({"time": time, "y": [32200.0, 16000.0, 500.0, 800.0],
                          "station": ["A", "A", "A", "B"]})
    clim = fit_climatology(train, thresholds=[1000.0], cap=16000.0, station_column="station")
    at = pd.Series(pd.to_datetime(["2024-01-09 00:00"] * 2, utc=True))
    # 32.2 km counted as the common 16 km cap, not as a longer-range era's report
    np.testing.assert_allclose(clim.predict(at, ["A", "B"]), [(16000 + 16000 + 500) / 3, 800])
    np.testing.assert_allclose(clim.probability(at, 1000.0, ["A", "B"]), [1 / 3, 1.0])
    assert clim.stations["A"].at[(1, 0), "n"] == 3
    with pytest.raises(VerificationError, match="no event frequency at 5000"):
        clim.probability(at, 5000.0)
    with pytest.raises(VerificationError, match="event must be 'below' or 'above'"):
        fit_climatology(train, thresholds=[1000.0], event="under")


def test_verification_caps_every_source_and_scores_probabilistic_climatology(hourly):
    t = hourly["time"]
    obs = hourly["y"].to_numpy().copy()
    obs[:5] = 30000.0
    prob = np.full(len(obs), 0.1)
    v = verify_forecasts({"candidate": hourly["good"] + 20000, "climatology": hourly["bad"]},
                         obs, valid_time=t, thresholds=[5000.0], cap=16000.0,
                         probabilities={5000.0: prob},
                         block=np.where(t.dt.day < 5, "2023-12", "2024-01"))
    assert any("capped at 16000" in n for n in v.notes)
    assert v.score("candidate", "bias") < 16000 - np.mean(np.minimum(obs, 16000)) + 1
    events = (np.minimum(obs, 16000) < 5000).astype(float)
    assert v.score("climatology", "brier_5000") == pytest.approx(np.mean((0.1 - events) ** 2))
    assert v.score("candidate", "brier_5000") == pytest.approx(events.mean())  # never forecast
    assert "pss_5000" in v.scores.columns
    # the month stratum follows the blocks (local-time months), every row counts n
    months = v.strata["month"]
    assert set(months["group"]) == {12, 1} and months["n"].gt(0).all()
    hours = v.strata["hour"]
    assert {"ets_5000", "pod_5000", "events_5000"} <= set(hours.columns)
    assert hours.groupby("source")["events_5000"].sum()["candidate"] == int(events.sum())
