"""Pure parts of the release cycle: bootstrap, gate rules, history, change class, replay."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from wxops.config import FeaturesConfig, GateConfig, parse_config
from wxops.errors import ConfigError, GateError, ReleaseError, VerificationError
from wxops.release import (
    HistoryEntry,
    block_bootstrap_pvalue,
    bump_version,
    champion_at,
    classify_change,
    evaluate_gate,
    rollback_target,
)
from wxops.release.history import parse_time
from wxops.release.replay import assemble_inputs, replay_cycles
from wxops.verify import verify_forecasts


def test_bootstrap_pvalue_separates_better_from_equal():
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, 500) ** 2
    better = ref * 0.5
    assert block_bootstrap_pvalue(better, ref, block_length=24, n_samples=500) < 0.01
    assert block_bootstrap_pvalue(ref * 2, ref, block_length=24, n_samples=500) > 0.99
    same = rng.permutation(ref)
    assert 0.01 < block_bootstrap_pvalue(same, ref, block_length=24, n_samples=500) < 0.99
    with pytest.raises(GateError, match="equal length"):
        block_bootstrap_pvalue([1.0, 2.0], [1.0], block_length=2)
    with pytest.raises(GateError, match="block_length must be"):
        block_bootstrap_pvalue(ref[:10], ref[10:20], block_length=0)
    with pytest.raises(GateError, match="at least 8 paired losses"):
        block_bootstrap_pvalue([1.0, 2.0], [1.0, 3.0])


def _verification(cand_noise: float, champ_noise: float = 300.0):
    rng = np.random.default_rng(0)
    t = pd.date_range("2024-01-01", periods=480, freq="h", tz="UTC")
    obs = np.asarray(6000 + 4000 * np.sin(2 * np.pi * t.hour / 24)) + rng.normal(0, 500, len(t))
    fc = {"candidate": obs + rng.normal(0, cand_noise, len(t)),
          "champion": obs + rng.normal(0, champ_noise, len(t)),
          "climatology": np.full(len(t), obs.mean())}
    return verify_forecasts(fc, obs, valid_time=t, thresholds=[1000.0, 5000.0]), fc, obs


def test_gate_passes_good_and_names_the_failed_rule_of_a_bad_candidate():
    cfg = parse_config({}).gate
    v, fc, obs = _verification(250.0)
    good = evaluate_gate(v, cfg, forecasts=fc, obs=obs)
    assert good.passed, good.summary()
    statuses = {r.rule: r.status for r in good.rows}
    assert statuses["rmse vs persistence: skill > 0"] == "skipped"
    champ_row = next(r for r in good.rows if r.against == "champion" and r.score == "rmse")
    assert champ_row.p_value is not None and champ_row.p_value < 0.05

    v, fc, obs = _verification(2000.0)
    bad = evaluate_gate(v, cfg, forecasts=fc, obs=obs)
    assert not bad.passed
    assert "rmse vs champion: at most 2 % worse" in bad.failed_rules
    assert "% worse than champion (limit 2 %)" in bad.summary()


def test_gate_without_champion_applies_reference_rules_only():
    v, _, _ = _verification(250.0)
    v.scores = v.scores.drop(index="champion")
    result = evaluate_gate(v, parse_config({}).gate)
    skipped = [r for r in result.rows if r.status == "skipped"]
    assert result.passed and {r.against for r in skipped} == {"persistence", "champion"}
    assert all("no champion yet" in r.why for r in skipped if r.against == "champion")


def test_gate_rule_naming_an_unknown_score_is_refused():
    with pytest.raises(ConfigError, match="unknown score 'skill_of_god'"):
        parse_config({"gate": {"rules": [{"score": "skill_of_god", "against": "climatology",
                                          "min_skill": 0}]}})
    with pytest.raises(ConfigError, match="unknown score 'ets_2000'"):
        parse_config({"gate": {"rules": [{"score": "ets_2000", "against": "champion",
                                          "max_worse_pct": 0}]}})
    for score in ("bss_1000", "brier_5000", "rps"):
        with pytest.raises(ConfigError, match=f"'{score}' is a probability score.*gate.probability"):
            parse_config({"gate": {"rules": [{"score": score, "against": "climatology",
                                              "min_skill": 0}]}})
    with pytest.raises(ConfigError, match="exactly one of min_skill or max_worse_pct"):
        parse_config({"gate": {"rules": [{"score": "rmse", "against": "champion"}]}})
    # a rule built in code, bypassing the config check, still fails clearly
    v, _, _ = _verification(250.0)
    rule_cfg = GateConfig.model_construct(rules=[
        GateConfig().rules[0].model_copy(update={"score": "nonsense"})],
        bootstrap_block_hours=24, bootstrap_samples=100)
    with pytest.raises(GateError, match="names unknown score 'nonsense'"):
        evaluate_gate(v, rule_cfg)


def _entry(seq, time, action, frm, to):
    return HistoryEntry(time=time, user="ops", action=action, alias="champion",
                        from_version=frm, to_version=to, reason="r", gate="pass",
                        forced=False, seq=seq)


def test_history_answers_champion_at_and_rollback_target():
    entries = [
        _entry(1, "2026-11-26T00:00:00+00:00", "promote", None, "1"),
        _entry(2, "2026-11-26T06:00:00+00:00", "rejected", "1", "2"),
        _entry(3, "2026-11-26T12:00:00+00:00", "promote", "1", "3"),
        _entry(4, "2026-11-26T18:00:00+00:00", "rollback", "3", "1"),
    ]
    at = parse_time
    assert champion_at(entries, at("2026-11-25T23:00Z")) is None
    assert champion_at(entries, at("2026-11-26T06:00Z")) == "1"
    assert champion_at(entries, at("2026-11-26T13:00")) == "3"
    assert champion_at(entries, at("2026-11-27T00:00Z")) == "1"
    assert rollback_target(entries[:3], "3") == "1"
    with pytest.raises(ReleaseError, match="first champion in the history"):
        rollback_target(entries, "1")
    with pytest.raises(ReleaseError, match="no champion to roll back"):
        rollback_target([], None)
    with pytest.raises(ReleaseError, match="cannot read time 'yesterday'"):
        parse_time("yesterday")
    assert at("2026-11-26T06:00Z") == dt.datetime(2026, 11, 26, 6, tzinfo=dt.UTC)


def test_change_class_and_semantic_version():
    old = {"inputs": [{"name": "t2m", "type": "double"}, {"name": "rh", "type": "double"}],
           "outputs": [{"type": "tensor"}]}
    same = classify_change(old, old)
    assert same.kind == "incremental" and bump_version("1.2.0", same) == "1.3.0"
    renamed = {**old, "inputs": [{"name": "t2m_K", "type": "double"},
                                 {"name": "rh", "type": "double"}]}
    change = classify_change(renamed, old)
    assert change.kind == "breaking" and bump_version("1.3.0", change) == "2.0.0"
    assert "inputs added: ['t2m_K']" in change.reasons
    assert classify_change(old, None).kind == "initial" and bump_version(None, same) == "1.0.0"
    with pytest.raises(ReleaseError, match=r"not MAJOR\.MINOR\.PATCH"):
        bump_version("v1", same)


class _LastLag:
    """Predicts the input 'visibility_lag1h' (stateless per row, like every wxops model)."""

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return x["visibility_lag1h"].to_numpy(dtype=float)


def _lead_data():
    from wxops.features import build_features

    t = pd.date_range("2024-01-01", periods=96, freq="h", tz="UTC")
    obs = pd.DataFrame({"time": t, "block": "2024-01", "t2m": np.arange(96.0),
                        "visibility": 1000.0 + np.arange(96.0)})
    fcfg = FeaturesConfig(target="visibility", predictors=["t2m"], derived=[], lead_time=3,
                          lags=[1])
    return obs, build_features(obs, fcfg), fcfg


def test_replay_uses_only_data_available_at_each_cycle():
    obs, table, fcfg = _lead_data()
    rep = replay_cycles({"candidate": _LastLag()}, obs, table.frame, inputs=table.inputs,
                        features=fcfg, cycle_hours=6)
    f = rep.frame
    assert (f["latest_data_time"] <= f["issue_time"]).all()
    assert f["issue_time"].is_monotonic_increasing and (f["issue_time"].dt.hour % 6 == 0).all()
    # visibility at t-1 h, at t (persistence) and verified at t+3 h
    hours = (f["issue_time"] - obs["time"][0]).dt.total_seconds() / 3600
    np.testing.assert_allclose(f["candidate"], 1000 + hours - 1)
    np.testing.assert_allclose(f["persistence"], 1000 + hours)
    np.testing.assert_allclose(f["obs"], 1000 + hours + 3)
    # the inputs assembled at a cycle equal the feature table's row for that time
    t = table.frame["time"][10]
    x = assemble_inputs(obs[obs["time"] <= t], t, table.inputs, "visibility")
    assert x is not None
    np.testing.assert_allclose(x.to_numpy(dtype=float)[0],
                               table.frame.loc[10, table.inputs].to_numpy(dtype=float))
    # data after the issue time cannot be used: the row at t is missing -> no input
    assert assemble_inputs(obs[obs["time"] < t], t, table.inputs, "visibility") is None


def test_replay_bad_input():
    obs, table, fcfg = _lead_data()
    with pytest.raises(VerificationError, match="test block is empty"):
        replay_cycles({}, obs, table.frame.iloc[0:0], inputs=table.inputs, features=fcfg,
                      cycle_hours=6)
    with pytest.raises(VerificationError, match="cannot build input 'snow'"):
        replay_cycles({}, obs, table.frame, inputs=["snow"], features=fcfg, cycle_hours=6)


def test_replay_batch_equals_one_predict_per_cycle():
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    from wxops.features import TARGET, MeteoFeatures

    obs, table, fcfg = _lead_data()
    x = table.frame[table.inputs]
    model = Pipeline([("features", MeteoFeatures(derived=[])), ("model", Ridge())])
    model.fit(x, table.frame[TARGET])
    rep = replay_cycles({"candidate": model}, obs, table.frame, inputs=table.inputs,
                        features=fcfg, cycle_hours=6)
    one_by_one = []
    for t in rep.frame["issue_time"]:
        row = assemble_inputs(obs[obs["time"] <= t], t, table.inputs, "visibility")
        one_by_one.append(float(model.predict(row)[0]))
    np.testing.assert_allclose(rep.frame["candidate"], one_by_one)


def _foggy(n_fog_spells: int = 12, seed: int = 0):
    """Ten weeks of hourly visibility with fog spells (< 1000 m, 4-8 h each)."""
    rng = np.random.default_rng(seed)
    n = 24 * 70
    t = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    obs = np.clip(12000 + 3000 * np.sin(np.arange(n) / 17) + rng.normal(0, 800, n), 1500, None)
    for start in rng.choice(np.arange(10, n - 10), n_fog_spells, replace=False):
        obs[start:start + rng.integers(4, 9)] = rng.uniform(150, 900)
    persistence = np.concatenate([obs[:3], obs[:-3]])
    return t, obs, persistence, rng


def test_fog_blind_candidate_is_rejected_by_a_named_event_rule_with_evidence():
    t, obs, persistence, rng = _foggy()
    blind = np.clip(obs, 4000, None) + rng.normal(0, 300, len(obs))  # good rmse, never fog
    fc = {"candidate": blind, "persistence": persistence}
    v = verify_forecasts(fc, obs, valid_time=t, thresholds=[1000.0, 5000.0])
    cfg = parse_config({"features": {"lead_time": 3}, "gate": {"bootstrap_samples": 300}}).gate
    result = evaluate_gate(v, cfg, forecasts=fc, obs=obs, lead_time=3)
    assert not result.passed
    assert "ets_1000 vs persistence: skill > 0" in result.failed_rules
    row = next(r for r in result.rows if r.rule == "ets_1000 vs persistence: skill > 0")
    assert row.n == len(obs) and row.events is not None and row.events >= 10
    assert "events hit: candidate 0/" in row.why
    assert row.effect is not None and row.effect < 0 and row.p_value is not None
    assert row.ci_low is not None and row.ci_high is not None and row.ci_low <= row.ci_high
    assert row.test is not None and row.test.startswith("block-bootstrap")
    # every judged rule carries n, an effect and a p-value or interval
    judged = [r for r in result.rows if r.status in ("pass", "fail")]
    assert judged and all(r.n and r.effect is not None and r.p_value is not None
                          for r in judged)
    rmse = next(r for r in result.rows if r.score == "rmse" and r.against == "persistence")
    assert rmse.test is not None and rmse.test.startswith("dm-hln")
    # the rmse rule's effect and interval are in metres (tested on squared errors)
    assert rmse.effect == pytest.approx(rmse.candidate - rmse.reference)
    assert rmse.ci_low is not None and rmse.ci_high is not None
    assert rmse.ci_low <= rmse.effect <= rmse.ci_high
    # a candidate that sees the fog passes the event rules
    good = obs + rng.normal(0, 100, len(obs))
    fc = {"candidate": good, "persistence": persistence}
    v = verify_forecasts(fc, obs, valid_time=t, thresholds=[1000.0, 5000.0])
    assert evaluate_gate(v, cfg, forecasts=fc, obs=obs, lead_time=3).passed


def test_event_rule_with_too_few_events_neither_passes_nor_fails():
    t, obs, persistence, _rng = _foggy(n_fog_spells=1)
    fc = {"candidate": np.full(len(obs), 9000.0), "persistence": persistence}
    v = verify_forecasts(fc, obs, valid_time=t, thresholds=[1000.0, 5000.0])
    cfg = parse_config({"gate": {"rules": [
        {"score": "ets_1000", "against": "persistence", "min_skill": 0.0},
        {"score": "pss_1000", "against": "persistence", "min_skill": 0.0, "min_events": 3}]}}).gate
    result = evaluate_gate(v, cfg, forecasts=fc, obs=obs)
    few = result.rows[0]
    assert few.status == "too few events" and few.events is not None and few.events < 10
    assert few.why == f"too few events (n={few.events} < 10 observed)"
    assert result.rows[1].status == "fail"  # min_events 3 per rule: judged, and blind
    assert "too few events" in evaluate_gate(v, cfg.model_copy(
        update={"rules": cfg.rules[:1]})).summary()
    with pytest.raises(ConfigError, match="min_events"):
        parse_config({"gate": {"rules": [{"score": "ets_1000", "against": "persistence",
                                          "min_skill": 0.0, "min_events": 0}]}})
