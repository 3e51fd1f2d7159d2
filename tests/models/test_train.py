import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import make_obs
from wxops import ModelConfigError, TrainingError
from wxops.config import (
    FeaturesConfig,
    GradientBoostingConfig,
    LinearConfig,
    MLPConfig,
    SplitConfig,
)
from wxops.features import build_features
from wxops.models.mlp import TorchMLPRegressor, resolve_device
from wxops.models.train import build_estimator, train_model
from wxops.split import assign_blocks, split_by_blocks

DERIVED = ["dewpoint_depression", "wind_components", "cyclic_time"]


@pytest.fixture(scope="module")
def table_and_split():  # type: ignore[no-untyped-def]
    frame = assign_blocks(make_obs(120), SplitConfig())
    table = build_features(frame, FeaturesConfig())
    return table, split_by_blocks(table.frame, SplitConfig(cycle=3))


@pytest.mark.parametrize("cfg", [
    MLPConfig(name="m", type="mlp", hidden_dim=16, epochs=4, batch_size=128),
    GradientBoostingConfig(name="g", type="gradient_boosting", max_iter=20),
    LinearConfig(name="r", type="linear"),
    MLPConfig(name="m-log", type="mlp", hidden_dim=16, epochs=4, batch_size=128,
              target_transform="log"),
    GradientBoostingConfig(name="g-log", type="gradient_boosting", max_iter=20,
                           target_transform="log"),
])
def test_each_model_learns_and_records_losses(cfg, table_and_split) -> None:  # type: ignore[no-untyped-def]
    table, split = table_and_split
    seen: list[tuple[int, float, float | None]] = []
    result = train_model(cfg, table, split, derived=DERIVED, seed=1,
                         on_epoch=lambda e, t, v: seen.append((e, t, v)))
    assert len(result.history) == len(seen) >= 1
    assert [s[0] for s in seen] == list(range(len(seen)))
    # The synthetic visibility depends on dew-point depression: every model beats the mean.
    y_val = split.validation["y"].to_numpy()
    assert result.metrics["val_rmse"] < np.std(y_val)
    assert result.history[-1]["val_loss"] < 1.0
    assert result.params["model"] == cfg.type and result.params["seed"] == 1
    # device: auto trains an MLP on the GPU where there is one; the others run on the CPU
    gpu = cfg.type == "mlp" and torch.cuda.is_available()
    assert result.params["device_used"] == ("cuda" if gpu else "cpu")
    # The fitted pipeline takes raw observations, as a served model will.
    pred = result.model.predict(split.test[table.inputs])
    assert pred.shape == (len(split.test),) and np.isfinite(pred).all()


def test_mlp_history_decreases_and_is_reproducible(table_and_split) -> None:  # type: ignore[no-untyped-def]
    table, split = table_and_split
    cfg = MLPConfig(name="m", type="mlp", hidden_dim=16, epochs=6, batch_size=64)
    a = train_model(cfg, table, split, derived=DERIVED, seed=3)
    b = train_model(cfg, table, split, derived=DERIVED, seed=3)
    c = train_model(cfg, table, split, derived=DERIVED, seed=4)
    assert a.history == b.history and a.metrics == b.metrics
    assert a.metrics != c.metrics
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"]


def test_bad_training_input() -> None:
    with pytest.raises(TrainingError, match="NaN/inf"):
        TorchMLPRegressor(epochs=1).fit(np.array([[1.0], [np.nan]]), np.array([1.0, 2.0]))
    with pytest.raises(TrainingError, match="one y per row"):
        TorchMLPRegressor(epochs=1).fit(np.ones((3, 2)), np.ones(2))
    with pytest.raises(TrainingError, match="beyond float32's range"):  # no warning either
        TorchMLPRegressor(epochs=1).fit(np.array([[1.0], [1e39]]), np.array([1.0, 2.0]))
    with pytest.raises(TrainingError, match="y holds values beyond float32's range"):
        TorchMLPRegressor(epochs=1).fit(np.array([[1.0], [2.0]]), np.array([1.0, -1e39]))
    with pytest.raises(ModelConfigError, match="unknown model type 'svm'"):
        build_estimator(pd.Series({"type": "svm"}), seed=0)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_requested_without_gpu() -> None:
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ModelConfigError, match="CUDA is not available; use 'auto'"):
        resolve_device("cuda")


@pytest.mark.gpu
def test_trains_on_cuda(table_and_split) -> None:  # type: ignore[no-untyped-def]
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    table, split = table_and_split
    cfg = MLPConfig(name="m", type="mlp", hidden_dim=32, epochs=3, device="cuda")
    result = train_model(cfg, table, split, derived=DERIVED, seed=0)
    assert result.params["device_used"] == "cuda"
    assert result.metrics["val_rmse"] < np.std(split.validation["y"].to_numpy())


@pytest.mark.gpu
def test_mlp_syncs_with_the_gpu_per_epoch_not_per_batch() -> None:
    """The epoch's loss is summed on the device: as many GPU-to-CPU syncs with 64
    mini-batches per epoch as with 4 (torch's sync debug mode warns at each one)."""
    import warnings

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.1, size=1024)

    def syncs(batch_size: int) -> int:
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                TorchMLPRegressor(epochs=2, batch_size=batch_size, device="cuda").fit(
                    x, y, X_val=x[:100], y_val=y[:100])
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in seen)

    assert syncs(16) == syncs(256) > 0
