"""A PyTorch multi-layer perceptron behind scikit-learn's estimator contract.

Inputs and target are standardised inside ``fit``, so the loss is the mean squared
error of the standardised target: 1.0 equals always forecasting the training mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from wxops.errors import ModelConfigError, TrainingError

EpochCallback = Callable[[int, float, float | None], None]
"""Called after each epoch with (epoch, train_loss, val_loss or None)."""
ScoresCallback = Callable[[int, dict[str, float]], None]
"""Called after each epoch with (epoch, {metric: value}): further per-epoch metrics
(probability MLPs: ``val_brier_1000``...)."""


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is usable, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelConfigError("device 'cuda' requested but CUDA is not available; use 'auto'")
    return device


def float32_values(values: Any, name: str) -> np.ndarray:
    """``values`` as the float32 the networks train in; refuses NaN/inf and values that
    are finite but beyond float32's range (the cast would make them inf), naming which.

    Raises:
        TrainingError: a value is not finite in float64, or not in float32.
    """
    with np.errstate(over="ignore"):  # a finite value beyond float32 becomes inf here
        narrow = np.asarray(values, dtype=np.float32)
    if np.isfinite(narrow).all():
        return narrow
    if not np.isfinite(np.asarray(values, dtype=np.float64)).all():
        raise TrainingError(f"{name} holds NaN/inf; impute or drop them before fitting")
    raise TrainingError(f"{name} holds values beyond float32's range (|v| > 3.4e38), in "
                        "which the network trains; rescale them before fitting")


def mlp_network(n_in: int, hidden_dim: int, hidden_layers: int, n_out: int) -> Any:
    """``hidden_layers`` ReLU layers of ``hidden_dim`` units and a linear output layer
    (the body every wxops MLP shares; PyTorch must be importable)."""
    from torch import nn

    layers: list[nn.Module] = []
    width = n_in
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, hidden_dim), nn.ReLU()]
        width = hidden_dim
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class TorchMLPRegressor(RegressorMixin, BaseEstimator):
    """Feed-forward network with ReLU layers, Adam and mini-batches.

    Args:
        hidden_dim: Units per hidden layer.
        hidden_layers: Number of hidden layers.
        learning_rate: Adam step size.
        batch_size: Rows per mini-batch.
        epochs: Passes over the training data.
        weight_decay: L2 penalty of Adam.
        device: ``auto``, ``cpu`` or ``cuda``.
        random_state: Seed of weights and batch order.
    """

    def __init__(
        self,
        hidden_dim: int = 64,
        hidden_layers: int = 2,
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        epochs: int = 20,
        weight_decay: float = 0.0,
        device: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.hidden_dim = hidden_dim
        self.hidden_layers = hidden_layers
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.device = device
        self.random_state = random_state

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        X_val: Any = None,
        y_val: Any = None,
        on_epoch: EpochCallback | None = None,
    ) -> TorchMLPRegressor:
        import torch
        from torch import nn

        x, t = float32_values(X, "X"), float32_values(y, "y").reshape(-1)
        if x.ndim != 2 or len(x) != len(t) or len(x) == 0:
            raise TrainingError(f"need a 2-D X with one y per row, got X{x.shape}, y{t.shape}")
        self.device_ = resolve_device(self.device)
        self.n_features_in_ = x.shape[1]
        self.x_mean_, self.x_std_ = x.mean(0), x.std(0) + 1e-6
        self.y_mean_, self.y_std_ = float(t.mean()), float(t.std() + 1e-6)
        gen = torch.Generator().manual_seed(self.random_state)
        torch.manual_seed(self.random_state)
        net = mlp_network(x.shape[1], self.hidden_dim, self.hidden_layers, 1).to(self.device_)
        opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate,
                               weight_decay=self.weight_decay)
        xs = torch.from_numpy((x - self.x_mean_) / self.x_std_).to(self.device_)
        ts = torch.from_numpy((t - self.y_mean_) / self.y_std_).to(self.device_)
        val = None
        if X_val is not None and y_val is not None:
            val = (self._scale(X_val, torch), torch.from_numpy(
                (np.asarray(y_val, np.float32).reshape(-1) - self.y_mean_) / self.y_std_
            ).to(self.device_))
        loss_fn = nn.MSELoss()
        self.history_: list[dict[str, float | None]] = []
        n = len(xs)
        for epoch in range(self.epochs):
            net.train()
            order = torch.randperm(n, generator=gen).to(self.device_)
            # summed on the device in float64 (the same sums as Python floats would give),
            # read once per epoch: no GPU-to-CPU sync per mini-batch
            total = torch.zeros((), dtype=torch.float64, device=self.device_)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                opt.zero_grad()
                loss = loss_fn(net(xs[idx]).squeeze(-1), ts[idx])
                loss.backward()
                opt.step()
                total += loss.detach().to(torch.float64) * len(idx)
            train_loss = float(total) / n
            if not np.isfinite(train_loss):
                raise TrainingError(
                    f"loss became {train_loss} at epoch {epoch}; lower learning_rate"
                )
            val_loss = None
            if val is not None:
                net.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(net(val[0]).squeeze(-1), val[1]))
            self.history_.append({"train_loss": train_loss, "val_loss": val_loss})
            if on_epoch is not None:
                on_epoch(epoch, train_loss, val_loss)
        self.net_ = net.to("cpu").eval()
        return self

    def predict(self, X: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.net_(self._scale(X, torch, device="cpu")).squeeze(-1).numpy()
        return out.astype(np.float64) * self.y_std_ + self.y_mean_

    def _scale(self, X: Any, torch: Any, device: str | None = None) -> Any:
        x = (np.asarray(X, dtype=np.float32) - self.x_mean_) / self.x_std_
        return torch.from_numpy(x.astype(np.float32)).to(device or self.device_)
