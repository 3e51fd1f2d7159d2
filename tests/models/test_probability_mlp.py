"""The PyTorch probability MLP: one body, one output per threshold, monotone by construction,
per-epoch Brier scores per threshold in its run, and the scores it is verified with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from tests.conftest import make_obs
from wxops import ConfigError, TrainingError, tracking
from wxops.config import FeaturesConfig, SplitConfig, parse_config
from wxops.features import TARGET, build_features
from wxops.models.probability_mlp import TorchThresholdProbabilityMLP, ordered_logits
from wxops.models.settings import ProbabilityMLPConfig
from wxops.models.task import TrainTask, run_train_task
from wxops.models.train import train_model
from wxops.split import assign_blocks, split_by_blocks
from wxops.verify.probabilistic import ranked_probability_score, verify_probabilities
from wxops.verify.score_table import SCORES, lookup

DERIVED = ["dewpoint_depression", "wind_components", "cyclic_time"]
SMALL = {"hidden_dim": 16, "epochs": 5, "batch_size": 128, "learning_rate": 0.01}


def _cfg(**extra: object) -> ProbabilityMLPConfig:
    raw = {"name": "pm", "type": "probability_mlp", "thresholds": [5000, 1000], **SMALL, **extra}
    model = parse_config({"models": [{"name": "r", "type": "linear"}, raw]}).models[1]
    assert isinstance(model, ProbabilityMLPConfig)
    return model


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    table = build_features(assign_blocks(make_obs(120), SplitConfig()), FeaturesConfig())
    return table, split_by_blocks(table.frame, SplitConfig(cycle=3))


@pytest.fixture(scope="module")
def trained(data):  # type: ignore[no-untyped-def]
    table, split = data
    seen: list[int] = []
    scores: list[dict[str, float]] = []
    result = train_model(_cfg(), table, split, derived=DERIVED, seed=1,
                         on_epoch=lambda e, t, v: seen.append(e),
                         on_scores=lambda e, s: scores.append(s))
    return result, seen, scores


def test_named_monotone_skilful_and_tracked_per_epoch(data, trained) -> None:  # type: ignore[no-untyped-def]
    table, split = data
    result, seen, scores = trained
    prob = result.model.predict(split.test[table.inputs])
    # the columns of the gradient-boosting probability model: verification and serving
    # read either unchanged
    assert list(prob.columns) == ["p_below_1000", "p_below_5000"]
    assert ((prob.to_numpy() >= 0) & (prob.to_numpy() <= 1)).all()
    assert (prob["p_below_1000"] <= prob["p_below_5000"]).all()
    # visibility follows dew-point depression: far better than the training frequency
    assert result.metrics["val_bss_5000"] > 0.3 and result.metrics["val_bss_1000"] > 0.0
    # per epoch: the loss curve (1.0 = the training frequency) and Brier per threshold
    assert seen == list(range(5)) and len(result.history) == len(scores) == 5
    assert result.history[0]["train_loss"] < 1.0
    assert result.history[-1]["val_loss"] < 0.8
    assert {"val_brier_1000", "val_brier_5000", "train_brier_1000", "val_bce"} <= set(scores[0])
    assert scores[-1]["val_brier_5000"] < scores[0]["val_brier_5000"]
    # the last epoch's scores are those of the returned model
    assert scores[-1]["val_brier_1000"] == pytest.approx(result.metrics["val_brier_1000"],
                                                         rel=1e-5)
    assert {k: v for k, v in result.history[-1].items() if k in scores[-1]} == scores[-1]
    assert result.params["model"] == "probability_mlp" and result.params["epochs"] == 5
    assert result.params["device_used"] == ("cuda" if torch.cuda.is_available() else "cpu")

    # verified with the score table's probability scores, CRPS over thresholds (RPS) too
    non_test = pd.concat([split.train[TARGET], split.validation[TARGET]])
    clim = {t: float((non_test < t).mean()) for t in (1000.0, 5000.0)}
    v = verify_probabilities({1000.0: prob["p_below_1000"], 5000.0: prob["p_below_5000"]},
                             split.test[TARGET], climatology=clim, valid_time=split.test["time"])
    metrics = v.metrics()
    assert metrics["test_rps"] == pytest.approx(v.scores["brier"].sum())
    assert metrics["test_rpss"] > 0.3 and metrics["test_bss_5000"] > 0.3
    for column in ("test_rps", "test_bss_1000", "test_auc_5000"):
        assert lookup(column.removeprefix("test_")) is not None, column
    assert any("ranked probability score" in line for line in v.summary("pm"))


def test_monotone_for_any_weights_and_inputs() -> None:
    """The ordering is the network's form, not a learned habit: random heads, random
    inputs far outside the training range, events below and above."""
    gen = torch.Generator().manual_seed(0)
    raw = torch.randn(2000, 4, generator=gen) * 20
    below = torch.sigmoid(ordered_logits(raw, 1.0))
    above = torch.sigmoid(ordered_logits(raw, -1.0))
    assert bool((below.diff(dim=1) >= 0).all()) and bool((above.diff(dim=1) <= 0).all())

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = np.exp(8 + x[:, 0] + rng.normal(0, 0.5, 400))
    wild = rng.normal(scale=50.0, size=(3000, 3))
    for event, order in (("below", 1), ("above", -1)):
        model = TorchThresholdProbabilityMLP(thresholds=(3000.0, 1000.0, 8000.0), event=event,
                                             hidden_dim=8, epochs=2, random_state=1).fit(x, y)
        p = model.predict_proba_array(wild)
        assert p.shape == (3000, 3) and model.columns_[0] == f"p_{event}_1000"
        assert (order * np.diff(p, axis=1) >= 0).all()


def test_seed_determines_the_model() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = 4000 + 3000 * x[:, 0]

    def fit(seed: int) -> np.ndarray:
        model = TorchThresholdProbabilityMLP(hidden_dim=8, epochs=2, random_state=seed)
        return model.fit(x, y, X_val=x[:50], y_val=y[:50]).predict_proba_array(x)

    assert np.array_equal(fit(5), fit(5))
    assert not np.array_equal(fit(5), fit(6))


def test_val_brier_per_epoch_in_the_run(data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A training task logs val_brier_1000 at every epoch's step; the final value is the
    last point (not a jump back to step 0)."""
    table, split = data
    paths = {}
    for name in ("train", "validation"):
        paths[name] = str(tmp_path / f"{name}.parquet")
        getattr(split, name).to_parquet(paths[name])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.connect(uri)
    exp = tracking.ensure_experiment("prob", (tmp_path / "artifacts").as_uri())
    with tracking.start_run(exp, "parent") as parent:
        outcome = run_train_task(TrainTask(
            model=_cfg(epochs=3), inputs=list(table.inputs), target=table.target,
            lead_time=table.lead_time, train_path=paths["train"],
            validation_path=paths["validation"], derived=DERIVED, seed=1, tracking_uri=uri,
            experiment_id=exp, parent_run_id=parent, pip_requirements=[], code_paths=[]))
    client = MlflowClient()
    history = client.get_metric_history(outcome.run_id, "val_brier_1000")
    steps = [m.step for m in history]
    assert sorted(set(steps)) == [0, 1, 2] and steps.count(0) == 1
    latest = client.get_run(outcome.run_id).data.metrics
    assert latest["val_brier_1000"] == outcome.result.metrics["val_brier_1000"]
    assert [m.step for m in client.get_metric_history(outcome.run_id, "val_loss")] == [0, 1, 2]
    assert latest["val_bss_5000"] == outcome.result.metrics["val_bss_5000"]


def test_bad_configurations_name_the_field() -> None:
    base = {"name": "pm", "type": "probability_mlp"}

    def parse(**extra: object) -> None:
        parse_config({"models": [{"name": "r", "type": "linear"}, {**base, **extra}]})

    with pytest.raises(ConfigError, match=r"models\.1\.probability_mlp\.thresholds: .*at least one"):
        parse(thresholds=[])
    with pytest.raises(ConfigError, match=r"models\.1\.probability_mlp\.thresholds: .*finite"):
        parse(thresholds=[1000, float("nan")])
    with pytest.raises(ConfigError, match=r"models\.1\.probability_mlp\.target_transform"):
        parse(target_transform="log")
    with pytest.raises(ConfigError, match=r"models\.1\.probability_mlp\.epochs"):
        parse(epochs=0)
    with pytest.raises(ConfigError, match=r"models\.1\.probability_mlp\.hiden_dim: unknown key"):
        parse(hiden_dim=8)
    # the estimator is the type: an unknown one is refused with the known types named
    with pytest.raises(ConfigError, match=r"models\.1: Input tag 'probability_mpl' .*'probability_mlp'"):
        parse(type="probability_mpl")
    with pytest.raises(ConfigError, match=r"models\.1\.probability\.estimator: unknown key"):
        parse(type="probability", estimator="mlp")
    # thresholds are sorted (as verify.thresholds): columns follow increasing thresholds
    assert _cfg(thresholds=[5000, 1000, 5000]).thresholds == [1000.0, 5000.0]


def test_bad_training_data() -> None:
    x = np.zeros((50, 2))
    with pytest.raises(TrainingError, match="no events below 10 "):
        TorchThresholdProbabilityMLP(thresholds=(10.0,), epochs=1).fit(x, np.full(50, 100.0))
    with pytest.raises(TrainingError, match="NaN/inf"):
        TorchThresholdProbabilityMLP(epochs=1).fit(np.full((50, 2), np.nan),
                                                   np.linspace(0, 9000, 50))
    with pytest.raises(TrainingError, match="X holds values beyond float32's range"):
        TorchThresholdProbabilityMLP(epochs=1).fit(np.full((50, 2), 1e39),
                                                   np.linspace(0, 9000, 50))
    with pytest.raises(TrainingError, match="one y per row"):
        TorchThresholdProbabilityMLP(epochs=1).fit(np.zeros((40, 2)), np.linspace(0, 9000, 50))
    with pytest.raises(TrainingError, match="lower learning_rate"):
        TorchThresholdProbabilityMLP(epochs=2, learning_rate=1e30).fit(
            np.random.default_rng(0).normal(size=(64, 2)) * 1e4, np.linspace(0, 9000, 64))


def test_score_table_probability_scores() -> None:
    """RPS is the sum of the Brier scores over thresholds (a continuous probability score);
    BSS and ROC area are per threshold; none is computed live from values."""
    prob = np.array([[0.1, 0.6], [0.0, 0.2], [0.9, 1.0]])
    events = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    expected = float(((prob - events) ** 2).sum(1).mean())
    assert ranked_probability_score(prob, events) == pytest.approx(expected)
    assert SCORES["rps"].resolve()(prob, events) == pytest.approx(expected)
    for name, direction, perfect in (("rps", "lower", 0.0), ("bss", "higher", 1.0),
                                     ("auc", "higher", 1.0)):
        score = SCORES[name]
        assert (score.direction, score.perfect, score.source, score.live) == (
            direction, perfect, "probability", False)
    assert lookup("bss_1000") is SCORES["bss"] and lookup("rps") is SCORES["rps"]
    assert SCORES["rps"].kind == "continuous" and SCORES["bss"].kind == "categorical"
    assert SCORES["rps"].better(0.1, 0.2) and SCORES["bss"].better(0.3, 0.1)


@pytest.mark.gpu
def test_syncs_with_the_gpu_per_epoch_not_per_batch() -> None:
    """Scores stay on the device: as many GPU-to-CPU syncs with 64 mini-batches per epoch
    as with 4 (torch's sync debug mode warns at each one)."""
    import warnings

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 4))
    y = 5000 + 3000 * x[:, 0]

    def syncs(batch_size: int) -> int:
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                TorchThresholdProbabilityMLP(epochs=2, batch_size=batch_size, device="cuda").fit(
                    x, y, X_val=x[:100], y_val=y[:100])
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in seen)

    assert syncs(16) == syncs(256) > 0
