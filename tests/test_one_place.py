"""Each concept named once: a score and a model type added in one place each reach
config, verification, the report, the gate, the monitor, training and the plots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_obs
from wxops.config import FeaturesConfig, LiveScoreRule, SplitConfig, parse_config
from wxops.errors import ConfigError
from wxops.features import build_features
from wxops.models.settings import ModelSettings
from wxops.models.train import train_model
from wxops.models.types import MODEL_TYPES, ModelType, register_model_type, unregister_model_type
from wxops.monitor import save_outputs, score_windows, write_status_page
from wxops.monitor.join import breaches
from wxops.monitor.run import MonitorResult
from wxops.split import assign_blocks, split_by_blocks
from wxops.verify import verify_forecasts, write_report
from wxops.verify.score_table import SCORES, Score, lookup, register_score, unregister_score
from wxops.verify.scoring import categorical_scores, continuous_scores, skill, worse_by_pct


class MedianConfig(ModelSettings):
    """A dummy model type: always the training median."""

    type: Literal["median"]
    quantile: float = 0.5


def _build_median(cfg: MedianConfig, seed: int) -> Any:
    from sklearn.dummy import DummyRegressor

    return DummyRegressor(strategy="quantile", quantile=cfg.quantile)


@pytest.fixture
def extended() -> Iterator[None]:
    """MSE (continuous), the Heidke skill score (categorical) and a median model type,
    each registered with one call."""
    register_score(Score("mse", kind="continuous", direction="lower", perfect=0.0,
                         function="scores.continuous.mse", description="mean squared error"))
    register_score(Score("hss", kind="categorical", direction="higher", perfect=1.0,
                         function="heidke_skill_score", description="Heidke skill score"))
    register_model_type(ModelType("median", MedianConfig, _build_median))
    try:
        yield
    finally:
        unregister_score("mse")
        unregister_score("hss")
        unregister_model_type("median")


def _config(**extra: Any) -> dict[str, Any]:
    return {"models": [{"name": "med", "type": "median", "quantile": 0.4}],
            "gate": {"rules": [{"score": "hss_1000", "against": "climatology", "min_skill": 0.0},
                               {"score": "mse", "against": "champion", "max_worse_pct": 5.0}]},
            "monitor": {"live_rules": [{"score": "hss_1000", "limit": 0.2}]}, **extra}


def test_without_registration_the_names_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"models\.0: Input tag 'median' found using 'type'"):
        parse_config({"models": [{"name": "med", "type": "median"}]})
    with pytest.raises(ConfigError, match=r"gate\.rules\.0: unknown score 'hss_1000'"):
        parse_config({"gate": {"rules": [{"score": "hss_1000", "against": "climatology",
                                          "min_skill": 0.0}]}})
    with pytest.raises(ConfigError, match=r"monitor\.live_rules\.0: score 'hss_1000' is unknown"):
        parse_config({"monitor": {"live_rules": [{"score": "hss_1000", "limit": 0.2}]}})


def test_registered_score_and_model_type_reach_every_reader(extended: None, tmp_path: Path) -> None:
    cfg = parse_config(_config())
    assert cfg.models[0].type == "median" and isinstance(cfg.models[0], MedianConfig)
    with pytest.raises(ConfigError, match=r"models\.0\.median\.quantil: unknown key"):
        parse_config({"models": [{"name": "m", "type": "median", "quantil": 0.4}]})
    # a probability score is known to the gate but not computed live
    with pytest.raises(ConfigError, match="'brier_1000' is not computed live"):
        parse_config({"monitor": {"live_rules": [{"score": "brier_1000", "limit": 0.1}]}})

    # training builds it from the registry; its requirements and loss axis come from there
    table = build_features(assign_blocks(make_obs(60), SplitConfig()), FeaturesConfig())
    split = split_by_blocks(table.frame, SplitConfig(cycle=3))
    result = train_model(cfg.models[0], table, split, derived=[], seed=0)
    assert result.params["model"] == "median" and len(result.history) == 1
    from wxops.pipeline import _requirements

    assert [r.split("==")[0] for r in _requirements("median")] == list(MODEL_TYPES["median"].pip_packages)

    # verification computes the scores with the scores package, the skill follows the table
    rng = np.random.default_rng(1)
    time = pd.date_range("2024-01-01", periods=240, freq="h", tz="UTC")
    obs = 6000 + 5000 * np.sin(2 * np.pi * time.hour / 24) + rng.normal(0, 400, len(time))
    good, bad = obs + rng.normal(0, 300, len(time)), obs + rng.normal(0, 3000, len(time))
    c = continuous_scores(good, obs)
    assert c["mse"] == pytest.approx(c["rmse"] ** 2)
    assert "hss_1000" in categorical_scores(good, obs, thresholds=[1000.0])
    assert skill("mse", 1.0, 4.0) == pytest.approx(0.75)
    assert worse_by_pct("hss_1000", 0.45, 0.5) == pytest.approx(10.0)

    # the report shows them in its tables and its loss-curve legend names the model type
    v = verify_forecasts({"candidate": good, "champion": bad}, obs, valid_time=time,
                         thresholds=[1000.0, 5000.0])
    page = write_report(v, tmp_path / "report", title="extended",
                        histories={"med": result.history}, model_types={"med": "median"})
    text = page.read_text()
    assert "<th>mse</th>" in text and "<th>hss_1000</th>" in text and "<th>hss_5000</th>" in text

    # the monitor scores them live, a limit on higher-is-better HSS is a floor
    joined = pd.DataFrame({"valid_time": time.tz_localize(None), "forecast": good, "obs": obs,
                           "model_version": "1"})
    windows = score_windows(joined, window=pd.Timedelta("2D"), step=pd.Timedelta("1D"),
                            max_windows=5, min_samples=24, thresholds=[1000.0], event="below")
    assert {"mse", "hss_1000"} <= set(windows.columns)
    floor = breaches(windows, [LiveScoreRule(score="hss_1000", limit=2.0)], {})
    assert floor["breached"].all()  # every HSS is below 2: a floor is breached
    ceiling = breaches(windows, [LiveScoreRule(score="mse", limit=1e12)], {})
    assert not ceiling["breached"].any()
    latest = {k: float(val) for k, val in windows.iloc[-1].items() if k != "model_version"}
    result_ = MonitorResult(
        model="visibility", version="1", now="2024-01-11T00:00:00", exit_code=0, alerts=[],
        scores=windows, rule_checks=floor, drift=pd.DataFrame(
            columns=["window_end", "feature", "baseline", "psi", "ks", "threshold", "breached"]),
        promotion={"mse": 1.0}, latest_scores=latest, live_breach_windows={},
        drift_breach_windows={}, drift_latest=[], observation_age_s=0.0, input_age_s=0.0,
        invalid_share=None, joined_latest=48, joined_total=240)
    save_outputs(result_, tmp_path / "monitor")
    status_page = write_status_page(tmp_path / "monitor").read_text()
    assert "<td>mse</td>" in status_page and "<td>hss_1000</td>" in status_page


def test_a_limit_follows_the_score_direction() -> None:
    """The Peirce skill score was read as a ceiling when it was missing from a list."""
    scores = pd.DataFrame({"pss_1000": [0.1, 0.6], "far_1000": [0.1, 0.6], "bias": [-30.0, 5.0],
                           "rmse": [1.0, 1.0]}, index=pd.Index([1, 2], name="window_end"))
    rules = [LiveScoreRule(score=s, limit=0.5) for s in ("pss_1000", "far_1000")]
    rules.append(LiveScoreRule(score="bias", limit=10.0))
    got = breaches(scores, rules, {}).groupby("score")["breached"].apply(list).to_dict()
    assert got == {"pss_1000": [True, False], "far_1000": [False, True], "bias": [True, False]}


def test_score_table_refuses_bad_entries() -> None:
    with pytest.raises(ValueError, match="'rmse' is already registered"):
        register_score(Score("rmse", kind="continuous", direction="lower", perfect=0.0,
                             function="scores.continuous.rmse"))
    with pytest.raises(ValueError, match="use lower-case letters"):
        Score("R MSE", kind="continuous", direction="lower", perfect=0.0, function="x.y")
    with pytest.raises(ValueError, match="a continuous score is computed from values or probability, not contingency"):
        Score("x", kind="continuous", direction="lower", perfect=0.0, function="threat_score",
              source="contingency")
    with pytest.raises(ValueError, match="needs `type: Literal\\['knn'\\]`"):
        register_model_type(ModelType("knn", MedianConfig, _build_median))
    assert lookup("frequency_bias_1000") is SCORES["frequency_bias"]
    assert lookup("hits_1000") is None and lookup("n") is None


def test_monitor_page_escapes_names(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    scores = pd.DataFrame({"model_version": ["1"], "n": [30.0], "rmse": [900.0], "hits_1000": [0.0],
                           "pod_1000": [float("nan")]},
                          index=pd.Index([pd.Timestamp("2024-01-02")], name="window_end"))
    result = MonitorResult(
        model=evil, version="1", now="2024-01-02T00:00:00", exit_code=5,
        alerts=[], scores=scores, rule_checks=pd.DataFrame(),
        drift=pd.DataFrame(columns=["window_end", "feature", "baseline", "psi", "ks", "threshold",
                                    "breached"]),
        promotion={"rmse": 800.0, "pod_1000": float("nan")},
        latest_scores={"n": 30.0, "rmse": 900.0, "pod_1000": float("nan")},
        live_breach_windows={}, drift_breach_windows={}, drift_latest=[], observation_age_s=0.0,
        input_age_s=0.0, invalid_share=None, joined_latest=30, joined_total=30,
        notes=[f"station {evil} has no observation"])
    save_outputs(result, tmp_path)
    page = write_status_page(tmp_path).read_text()
    assert "<script>" not in page and page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert "live-score incident (exit code 5)" in page and "<td>rmse</td><td>900</td>" in page
    # an undefined score (no event in the window: NaN, null in status.json) shows a dash
    assert "<td>pod_1000</td><td>–</td><td>–</td>" in page


def test_config_validate_names_a_score_the_monitor_cannot_watch(tmp_path: Path) -> None:
    """`wxops config validate` in a project folder, as a user runs it."""
    import subprocess
    import sys

    (tmp_path / "wxops.yaml").write_text(
        "verify: {thresholds: [1000, 5000]}\n"
        "monitor:\n  live_rules:\n    - {score: pss_1000, limit: 0.2}\n"
        "    - {score: pss_300, limit: 0.2}\n", encoding="utf-8")
    done = subprocess.run([str(Path(sys.executable).parent / "wxops"), "config", "validate",
                           "-c", "wxops.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "monitor.live_rules.1: score 'pss_300' is unknown" in done.stderr + done.stdout
    assert "(got {" not in done.stderr + done.stdout  # the message, not the whole file


def test_release_note_says_which_way_each_score_is_better(extended: None) -> None:
    from wxops.release.note import ChangeClass, release_note

    note = release_note(
        model="visibility", version="2", semver="1.1.0", change=ChangeClass("incremental"),
        previous=None, reason="test", user="me", time="now", forced=False, gate_summary="pass",
        params_diff=[], data_diff=[],
        scores={"n": {"candidate": 240.0}, "rmse": {"candidate": 900.0, "champion": 950.0},
                "bias": {"candidate": -20.0}, "frequency_bias_1000": {"candidate": 1.2},
                "hss_1000": {"candidate": 0.4}})
    for row in ("| n |  | 240 |", "| rmse | lower | 900 | 950 |", "| bias | closer to 0 | -20 |",
                "| frequency_bias_1000 | closer to 1 | 1.2 |", "| hss_1000 | higher | 0.4 |"):
        assert row in note, row


class StagedConfig(ModelSettings):
    type: Literal["staged_median"]


def test_a_model_type_claiming_stages_it_lacks_is_named() -> None:
    from wxops.errors import TrainingError

    register_model_type(ModelType("staged_median", StagedConfig,
                                  lambda cfg, seed: _build_median(MedianConfig(name="m", type="median"), seed),
                                  loss_curve="stages"))
    try:
        table = build_features(assign_blocks(make_obs(60), SplitConfig()), FeaturesConfig())
        split = split_by_blocks(table.frame, SplitConfig(cycle=3))
        with pytest.raises(TrainingError, match=r"DummyRegressor has no staged_predict.*"
                                                r"loss_curve='single'"):
            train_model(StagedConfig(name="s", type="staged_median"), table, split, derived=[], seed=0)
    finally:
        unregister_model_type("staged_median")
