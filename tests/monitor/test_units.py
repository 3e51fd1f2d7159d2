"""Small in-memory checks of readers, join, statistics, rules and exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from wxops.config import LiveScoreRule, MonitorConfig, parse_config, parse_duration
from wxops.errors import ConfigError, MonitorError
from wxops.monitor import (
    EXIT_DRIFT,
    EXIT_INCIDENT,
    EXIT_OK,
    EXIT_STALE,
    Alert,
    join_forecasts,
    ks_statistic,
    psi,
    read_observations,
    read_prediction_log,
    score_windows,
)
from wxops.monitor.alerts import exit_code
from wxops.monitor.join import breaches, promotion_scores, sustained, window_ends
from wxops.monitor.run import served_features


def _preds(n: int = 48, start: str = "1980-12-01") -> pd.DataFrame:
    time = pd.date_range(start, periods=n, freq="h")
    return pd.DataFrame({"time": time, "t2m": np.linspace(0, 5, n), "forecast": np.full(n, 5000.0),
                         "received_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), "s"),
                         "model_name": "visibility", "model_version": "1", "run_id": "r"})


def _obs(n: int = 48, start: str = "1980-12-01", vis: float = 6000.0) -> pd.DataFrame:
    return pd.DataFrame({"time": pd.date_range(start, periods=n, freq="h"),
                         "visibility": np.full(n, vis), "t2m": np.linspace(0, 5, n)})


def test_observation_file_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "obs.csv"
    pd.DataFrame({"time": ["1980-12-01T00:00"], "vis": [5000]}).to_csv(path, index=False)
    with pytest.raises(MonitorError, match=r"obs\.csv: missing column\(s\) \['visibility'\]"):
        read_observations(path, target="visibility")


def test_observation_file_malformed(tmp_path: Path) -> None:
    bad_time = tmp_path / "t.csv"
    pd.DataFrame({"time": ["yesterday-ish"], "visibility": [1.0]}).to_csv(bad_time, index=False)
    with pytest.raises(MonitorError, match=r"t\.csv: column 'time' holds values that are not times"):
        read_observations(bad_time, target="visibility")
    bad_value = tmp_path / "v.csv"
    pd.DataFrame({"time": ["1980-12-01T00:00"], "visibility": ["fog"]}).to_csv(bad_value, index=False)
    with pytest.raises(MonitorError, match=r"v\.csv: column 'visibility' holds non-numeric values such as 'fog'"):
        read_observations(bad_value, target="visibility")
    with pytest.raises(MonitorError, match=r"unknown observation format '\.xlsx'"):
        (tmp_path / "o.xlsx").write_text("x")
        read_observations(tmp_path / "o.xlsx", target="visibility")
    with pytest.raises(MonitorError, match="observation file not found"):
        read_observations(tmp_path / "absent.csv", target="visibility")


def test_observation_times_become_naive_utc(tmp_path: Path) -> None:
    path = tmp_path / "obs.csv"
    frame = pd.DataFrame({"time": ["1980-12-01T01:00+01:00"], "visibility": [900], "remark": ["mist"]})
    frame.to_csv(path, index=False)
    obs = read_observations(path, target="visibility")
    assert obs["time"].iloc[0] == pd.Timestamp("1980-12-01 00:00")
    assert "remark" not in obs.columns


def test_prediction_log_errors(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="prediction log not found"):
        read_prediction_log(tmp_path / "none.db")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(MonitorError, match="not a wxops prediction log"):
        read_prediction_log(other)


def test_prediction_log_rows_exploded(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE predictions (id INTEGER PRIMARY KEY, received_at TEXT, endpoint TEXT, "
                     "model_name TEXT, model_version TEXT, run_id TEXT, n_rows INTEGER, inputs TEXT, outputs TEXT)")
        ms = int(pd.Timestamp("1980-12-01").value // 10**6)
        conn.execute("INSERT INTO predictions (received_at, endpoint, model_name, model_version, run_id, n_rows, "
                     "inputs, outputs) VALUES (?,?,?,?,?,?,?,?)",
                     ("2024-01-01T00:00:00.000+00:00", "/predict", "visibility", "3", "abc", 2,
                      json.dumps({"time": [ms, ms + 3_600_000], "t2m": [1.0, 2.0]}), json.dumps([100.0, 200.0])))
    frame = read_prediction_log(path)
    assert list(frame["time"]) == [pd.Timestamp("1980-12-01 00:00"), pd.Timestamp("1980-12-01 01:00")]
    assert list(frame["forecast"]) == [100.0, 200.0]
    assert set(frame["model_version"]) == {"3"}


def test_join_by_valid_time_with_lead_time_and_latest_forecast() -> None:
    preds = _preds(4)
    repeat = preds.iloc[[0]].assign(forecast=1.0, received_at=pd.Timestamp("2030-01-01"))
    joined = join_forecasts(pd.concat([preds, repeat]), _obs(10), target="visibility", lead_time=3,
                            features=["t2m"])
    assert len(joined) == 4
    assert joined["valid_time"].iloc[0] == pd.Timestamp("1980-12-01 03:00")
    assert joined["forecast"].iloc[0] == 1.0  # the later forecast of the same valid time wins
    assert "t2m_obs" in joined.columns and set(joined["lead_time"]) == {3}


def test_join_without_overlap_says_both_ranges() -> None:
    with pytest.raises(MonitorError, match=r"no overlap in valid time .*1980-12-01.*1981-06-01"):
        join_forecasts(_preds(), _obs(start="1981-06-01"), target="visibility", lead_time=None)


def test_join_by_station_when_both_sides_have_one() -> None:
    preds = _preds(2).assign(station="A")
    obs = pd.concat([_obs(2).assign(station="A"), _obs(2, vis=10.0).assign(station="B")])
    joined = join_forecasts(preds, obs, target="visibility", lead_time=None)
    assert list(joined["obs"]) == [6000.0, 6000.0]


def test_unknown_feature_is_named() -> None:
    with pytest.raises(MonitorError, match=r"unknown feature\(s\) \['t2m_k'\].*\['t2m'\]"):
        served_features(_preds(), ["t2m_k"])
    assert served_features(_preds(), None) == ["t2m"]


def test_window_scores_match_the_scores_package() -> None:
    joined = join_forecasts(_preds(96), _obs(96), target="visibility", lead_time=None)
    scores = score_windows(joined, window=pd.Timedelta("1D"), step=pd.Timedelta("12h"), max_windows=10,
                           min_samples=12, thresholds=[1000.0, 5000.0], event="below")
    assert len(scores) >= 4
    full = scores.dropna(subset=["rmse"])
    assert np.allclose(full["rmse"], 1000.0) and np.allclose(full["bias"], -1000.0)
    # forecast 5000 < 5000 is not an event, observation 6000 neither: no hits
    assert (full["hits_5000"] == 0).all()
    ends = window_ends(joined["valid_time"], window=pd.Timedelta("1D"), step=pd.Timedelta("12h"), max_windows=3)
    assert ends == sorted(ends) and len(ends) == 3


def test_breaches_against_promotion_level() -> None:
    scores = pd.DataFrame({"rmse": [100.0, 130.0, 140.0], "n": 50.0},
                          index=pd.date_range("2024-01-01", periods=3, freq="D").rename("window_end"))
    checks = breaches(scores, [LiveScoreRule(score="rmse", max_worse_pct=25)], {"rmse": 100.0})
    assert list(checks["breached"]) == [False, True, True]
    assert sustained(list(checks["breached"]), 2) and not sustained(list(checks["breached"]), 3)
    with pytest.raises(MonitorError, match="unknown score 'ets_300'"):
        breaches(scores, [LiveScoreRule(score="ets_300")], {})
    absolute = breaches(scores, [LiveScoreRule(score="rmse", limit=135.0)], {})
    assert list(absolute["breached"]) == [False, False, True]


def test_promotion_scores_from_verification_json() -> None:
    record = {"test_block": {"scores": [{"source": "climatology", "rmse": 9.0},
                                        {"source": "candidate", "rmse": 5.0, "ets_1000": None}]}}
    assert promotion_scores(record) == {"rmse": 5.0}
    assert promotion_scores(None) == {}


def test_psi_and_ks() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=5000)
    assert psi(base, base) == pytest.approx(0.0)
    assert psi(base + 0.05, base) < 0.05 < psi(base + 1.0, base)
    live = rng.normal(1.0, size=300)
    assert ks_statistic(live, base) == pytest.approx(ks_2samp(live, base).statistic)
    assert np.isfinite(psi(np.array([1.0, 2.0]), np.full(50, 1.0)))  # constant baseline


def test_exit_codes_take_the_most_serious() -> None:
    assert exit_code([]) == EXIT_OK
    assert exit_code([Alert("stale", "observations", "")]) == EXIT_STALE
    assert exit_code([Alert("stale", "x", ""), Alert("drift", "t2m", "")]) == EXIT_DRIFT
    assert exit_code([Alert("live_score", "rmse", ""), Alert("drift", "t2m", "")]) == EXIT_INCIDENT


def test_monitor_config_durations() -> None:
    assert parse_duration("7d") == 7 * 86400
    assert MonitorConfig().window == "7d"
    with pytest.raises(ConfigError, match=r"monitor\.window"):
        parse_config({"monitor": {"window": "a week"}})
    with pytest.raises(ConfigError, match=r"monitor\.drift\.hour_window"):
        parse_config({"monitor": {"drift": {"hour_window": 30}}})
