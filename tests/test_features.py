import numpy as np
import pandas as pd
import pytest

from wxops import FeatureError
from wxops.config import FeaturesConfig, SplitConfig
from wxops.features import TARGET, MeteoFeatures, build_features, relative_humidity
from wxops.split import assign_blocks


def test_relative_humidity_magnus() -> None:
    # Saturated air: RH 100 %; 20 C with 10 C dew point is about 52.6 % (Magnus).
    rh = relative_humidity(pd.Series([15.0, 20.0]), pd.Series([15.0, 10.0]))
    np.testing.assert_allclose(rh, [100.0, 52.6], atol=0.2)


def test_meteo_features_derivations() -> None:
    frame = pd.DataFrame({
        "time": pd.to_datetime(["2021-01-01 06:00", "2021-07-01 18:00"], utc=True),
        "t2m": [20.0, 5.0], "td2m": [10.0, 5.0], "rh": [np.nan, 90.0],
        "wind_speed": [10.0, 2.0], "wind_dir": [90.0, 180.0],
    })
    out = MeteoFeatures(["dewpoint_depression", "wind_components", "cyclic_time"]).fit_transform(frame)
    assert "time" not in out.columns and "wind_dir" not in out.columns
    np.testing.assert_allclose(out["dewpoint_depression"], [10.0, 0.0])
    np.testing.assert_allclose(out["rh"], [52.6, 90.0], atol=0.2)  # filled, not overwritten
    np.testing.assert_allclose(out["wind_u"], [-10.0, 0.0], atol=1e-9)  # easterly wind blows west
    np.testing.assert_allclose(out["wind_v"], [0.0, 2.0], atol=1e-9)  # southerly blows north
    np.testing.assert_allclose(out["hour_sin"], [1.0, -1.0], atol=1e-9)


def test_meteo_features_names_missing_inputs() -> None:
    with pytest.raises(FeatureError, match=r"need columns \['wind_dir'\]"):
        MeteoFeatures(["wind_components"]).fit(pd.DataFrame({"wind_speed": [1.0]}))
    with pytest.raises(FeatureError, match="unknown derived features"):
        MeteoFeatures(["vorticity"]).fit(pd.DataFrame({"t2m": [1.0]}))


def _blocked(obs: pd.DataFrame) -> pd.DataFrame:
    return assign_blocks(obs, SplitConfig())


def test_diagnostic_mode(obs: pd.DataFrame) -> None:
    table = build_features(_blocked(obs), FeaturesConfig(predictors=["t2m", "td2m"]))
    assert table.inputs == ["time", "t2m", "td2m"]
    np.testing.assert_allclose(table.frame[TARGET], obs["visibility"])


def test_lead_time_never_crosses_a_block(obs: pd.DataFrame) -> None:
    blocked = _blocked(obs)
    cfg = FeaturesConfig(predictors=["t2m"], derived=[], lead_time=3, lags=[1, 2])
    table = build_features(blocked, cfg)
    frame = table.frame
    assert table.inputs == ["t2m", "visibility", "t2m_lag1h", "visibility_lag1h",
                            "t2m_lag2h", "visibility_lag2h"]
    # Target at t+3 h and the lags are real values from the same block.
    lookup = blocked.set_index("time")
    for _, row in frame.sample(50, random_state=0).iterrows():
        assert row[TARGET] == lookup.loc[row["time"] + pd.Timedelta(hours=3), "visibility"]
        assert row["t2m_lag2h"] == lookup.loc[row["time"] - pd.Timedelta(hours=2), "t2m"]
        assert lookup.loc[row["time"] + pd.Timedelta(hours=3), "block"] == row["block"]
        assert lookup.loc[row["time"] - pd.Timedelta(hours=2), "block"] == row["block"]
    # The first 2 h and last 3 h of every block have no complete row.
    per_block = frame.groupby("block")["time"]
    for block, first in per_block.min().items():
        assert first == blocked.loc[blocked.block == block, "time"].min() + pd.Timedelta(hours=2)
    assert table.rows_dropped_missing == 3 * 5  # 3 months x (2 + 3) hours


def test_lag_across_a_gap_is_missing_not_shifted(obs: pd.DataFrame) -> None:
    blocked = _blocked(obs).drop(index=[100]).reset_index(drop=True)  # one missing hour
    cfg = FeaturesConfig(predictors=["t2m"], derived=[], lead_time=1, lags=[1])
    frame = build_features(blocked, cfg).frame
    gap_time = obs.loc[100, "time"]
    assert gap_time + pd.Timedelta(hours=1) not in set(frame["time"])  # its lag is the gap
    assert gap_time - pd.Timedelta(hours=1) not in set(frame["time"])  # its target is the gap


def test_bad_features(obs: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match=r"lack columns \['ceiling'\]"):
        build_features(_blocked(obs), FeaturesConfig(predictors=["t2m", "ceiling"]))
    with pytest.raises(FeatureError, match="'block' column"):
        build_features(obs, FeaturesConfig(predictors=["t2m"]))
    leaky = FeaturesConfig.model_construct(predictors=["present_weather"], target="visibility")
    with pytest.raises(FeatureError, match="leak the target"):
        build_features(_blocked(obs), leaky)


def test_training_and_serving_features_agree_on_the_reference_data() -> None:
    """One implementation of the feature maths: the training transformer (a DataFrame
    with time-zone aware times) and the serving fast path's call (the arrays a request
    becomes: naive UTC datetime64, float64) give the same numbers on all 8760 hours of
    the reference TMY3 year."""
    from wxops.config import DataConfig
    from wxops.data.sources import read_source
    from wxops.features import DERIVED_FEATURES, derive_features

    obs = read_source(DataConfig())
    raw = obs[["time", "t2m", "td2m", "rh", "pressure", "wind_speed", "wind_dir"]].copy()
    raw.loc[raw.index[::7], "rh"] = np.nan  # filled from t2m and td2m on both paths
    derived = [d for d in DERIVED_FEATURES if d != "station_onehot"]
    trained = MeteoFeatures(derived).fit_transform(raw)
    request = {name: raw[name].to_numpy(dtype=np.float64) for name in raw.columns if name != "time"}
    request["time"] = raw["time"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype(
        "datetime64[ns]")
    served = derive_features(request, derived)
    assert len(trained) == 8760 and list(trained.columns) == list(served)
    for name in trained.columns:
        np.testing.assert_array_equal(trained[name].to_numpy(), served[name], err_msg=name)
    assert trained.notna().all().all()


def test_derive_features_on_arrays() -> None:
    from wxops.features import derive_features

    time = np.array(["2020-12-31T18:30:00", "NaT"], dtype="datetime64[ns]")
    out = derive_features({"time": time, "station": np.array(["A", "C"], dtype=object),
                           "t2m": np.array([20.0, 5.0]), "td2m": np.array([10.0, 5.0])},
                          ["cyclic_time", "station_onehot", "dewpoint_depression"],
                          stations=["A", "B"])
    assert list(out) == ["t2m", "td2m", "rh", "dewpoint_depression", "hour_sin", "hour_cos",
                         "doy_sin", "doy_cos", "station=A", "station=B"]
    np.testing.assert_allclose(out["hour_sin"][0], np.sin(2 * np.pi * 18.5 / 24.0))
    np.testing.assert_allclose(out["doy_cos"][0], np.cos(2 * np.pi * 366 / 365.25))  # leap year
    assert np.isnan(out["hour_cos"][1]) and np.isnan(out["doy_sin"][1])  # no time, no phase
    np.testing.assert_array_equal(out["station=A"], [1.0, 0.0])
    np.testing.assert_array_equal(out["station=B"], [0.0, 0.0])  # unseen station: all zeros


def test_given_humidity_is_kept_and_a_missing_one_filled() -> None:
    """A served request has every rh (validated): it is used as sent; a NaN is filled
    from t2m and td2m, and only that one."""
    from wxops.features import derive_features

    t2m, td2m = np.array([20.0, 5.0, 12.0]), np.array([10.0, 5.0, -3.0])
    given = np.array([55.0, 90.0, 40.0])
    out = derive_features({"t2m": t2m, "td2m": td2m, "rh": given.copy()}, [])
    np.testing.assert_array_equal(out["rh"], given)
    holes = np.array([np.nan, 90.0, np.nan])
    out = derive_features({"t2m": t2m, "td2m": td2m, "rh": holes}, [])
    np.testing.assert_array_equal(out["rh"], [relative_humidity(t2m, td2m)[0], 90.0,
                                              relative_humidity(t2m, td2m)[2]])
