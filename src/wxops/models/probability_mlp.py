"""A PyTorch MLP with one output per threshold: P(visibility < t) for every t at once.

One shared network body (``wxops.models.mlp.mlp_network``) sees the features once and a
head of one output per threshold gives the event probabilities; training minimises the
sum over thresholds of the binary cross-entropy (each threshold's log score), a proper
score, so the probabilities are pushed towards the observed frequencies.

Monotone by construction, not by repair: the head's first output is the logit at the
lowest threshold and every further output is a softplus (>= 0) increment added to the
previous logit (subtracted for events ``above``). Since the sigmoid is increasing,
P(< 1000) <= P(< 5000) holds for every input and every weight, during training as well
as after, so the cumulative maximum the gradient-boosting model needs is never applied
and the loss is never computed on probabilities that cross. This is the cumulative-link
(ordinal regression) form of a predictive distribution read at the thresholds.

Tracked like every configuration: per epoch ``train_loss``/``val_loss`` on the scale of
the other probability model (mean over thresholds of Brier score / Brier score of the
training frequency; 1.0 = always forecasting the training frequency), the Brier score
per threshold (``train_brier_1000``, ``val_brier_1000``) and the cross-entropy that is
minimised (``train_bce``, ``val_bce``), all of the model as it stands after the epoch.
They are in ``history_`` (a cached configuration re-logs them) and go to ``on_scores``
as they come. The sums stay on the device and are read once per epoch (no GPU
synchronisation per mini-batch).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from wxops.errors import TrainingError
from wxops.models.mlp import (
    EpochCallback,
    ScoresCallback,
    float32_values,
    mlp_network,
    resolve_device,
)
from wxops.models.probability import ThresholdProbabilityModel

#: Rows per forward pass when scoring a whole table (bounds GPU memory).
_CHUNK = 65_536


def ordered_logits(raw: Any, sign: float) -> Any:
    """Head outputs (rows x thresholds) -> logits ordered across thresholds.

    ``z_1 = raw_1`` and ``z_k = z_(k-1) + sign * softplus(raw_k)``: non-decreasing in k
    for ``sign = +1`` (events below), non-increasing for ``-1`` (events above).
    """
    import torch
    from torch.nn import functional

    if raw.shape[1] == 1:
        return raw
    steps = functional.softplus(raw[:, 1:]).cumsum(dim=1)
    return torch.cat([raw[:, :1], raw[:, :1] + sign * steps], dim=1)


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


class TorchThresholdProbabilityMLP(ThresholdProbabilityModel):
    """Shared MLP body, one sigmoid output per threshold, monotone across thresholds.

    Args:
        thresholds: Event thresholds in the target's unit (sorted in ``fit``).
        event: ``below`` (low visibility) or ``above`` the threshold.
        hidden_dim, hidden_layers: Units per hidden layer and their number.
        learning_rate: Adam step size.
        batch_size: Rows per mini-batch.
        epochs: Passes over the training data.
        weight_decay: L2 penalty of Adam.
        device: ``auto``, ``cpu`` or ``cuda``.
        random_state: Seed of weights and batch order.
    """

    def __init__(
        self,
        thresholds: tuple[float, ...] = (1000.0, 5000.0),
        event: str = "below",
        hidden_dim: int = 64,
        hidden_layers: int = 2,
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        epochs: int = 20,
        weight_decay: float = 0.0,
        device: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.thresholds = thresholds
        self.event = event
        self.hidden_dim = hidden_dim
        self.hidden_layers = hidden_layers
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.device = device
        self.random_state = random_state

    @property
    def _sign(self) -> float:
        return 1.0 if self.event == "below" else -1.0

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        X_val: Any = None,
        y_val: Any = None,
        on_epoch: EpochCallback | None = None,
        on_scores: ScoresCallback | None = None,
    ) -> TorchThresholdProbabilityMLP:
        import torch

        events = self._prepare(y).astype(np.float32)
        x = float32_values(X, "X")
        if x.ndim != 2 or len(x) != len(events):
            raise TrainingError(f"need a 2-D X with one y per row, got X{x.shape}, "
                                f"y({len(events)},)")
        self.device_ = resolve_device(self.device)
        self.n_features_in_ = x.shape[1]
        self.x_mean_, self.x_std_ = x.mean(0), x.std(0) + 1e-6
        gen = torch.Generator().manual_seed(self.random_state)
        torch.manual_seed(self.random_state)
        net = mlp_network(x.shape[1], self.hidden_dim, self.hidden_layers, len(self.thresholds_))
        self._start_at_base_rates(net[-1])
        net = net.to(self.device_)
        opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate,
                               weight_decay=self.weight_decay)
        xs = self._scale(x, torch)
        es = torch.from_numpy(events).to(self.device_)
        val = None
        if X_val is not None and y_val is not None and len(y_val):
            val = (self._scale(X_val, torch),
                   torch.from_numpy(self._events(y_val).astype(np.float32)).to(self.device_))
        rates = np.asarray(self.base_rates_)
        reference = rates * (1 - rates)  # Brier score of the training frequency
        labels = [f"{t:g}" for t in self.thresholds_]
        k, n = len(labels), len(xs)
        self.history_: list[dict[str, float | None]] = []
        for epoch in range(self.epochs):
            net.train()
            order = torch.randperm(n, generator=gen).to(self.device_)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                opt.zero_grad()
                self._loss(net(xs[idx]), es[idx]).mean(0).sum().backward()
                opt.step()
            # Brier per threshold and cross-entropy of the model as it stands after the
            # epoch, on training and validation rows: one device-to-host copy per epoch
            net.eval()
            parts = [self._evaluate(net, xs, es)]
            if val is not None:
                parts.append(self._evaluate(net, *val))
            stats = np.asarray(torch.cat(parts).tolist())
            if not np.isfinite(stats).all():
                raise TrainingError(f"loss became {stats[k]} at epoch {epoch}; "
                                    "lower learning_rate")
            scores = self._named(stats[: k + 1], "train", labels)
            train_loss = float(np.mean(stats[:k] / reference))
            val_loss = None
            if val is not None:
                scores.update(self._named(stats[k + 1 :], "val", labels))
                val_loss = float(np.mean(stats[k + 1 : 2 * k + 1] / reference))
            self.history_.append({"train_loss": train_loss, "val_loss": val_loss, **scores})
            if on_epoch is not None:
                on_epoch(epoch, train_loss, val_loss)
            if on_scores is not None:
                on_scores(epoch, scores)
        self.net_ = net.to("cpu").eval()
        return self

    def _start_at_base_rates(self, head: Any) -> None:
        """Output biases that give the training frequencies and small output weights:
        the first epoch starts at the climatological forecast (loss ~1.0) instead of
        spending its steps learning that fog is rare."""
        import torch

        logits = [_logit(min(max(r, 1e-4), 1 - 1e-4)) for r in self.base_rates_]
        # ordered_logits adds softplus(b) to the previous logit: invert softplus for the gaps
        gaps = [max(abs(b - a), 1e-3) for a, b in pairwise(logits)]
        bias = [logits[0], *(float(np.log(np.expm1(g))) for g in gaps)]
        with torch.no_grad():
            head.bias.copy_(torch.tensor(bias, dtype=head.bias.dtype))
            head.weight.mul_(0.1)

    def _loss(self, raw: Any, events: Any) -> Any:
        """Cross-entropy per row and threshold of the head's raw outputs."""
        from torch.nn import functional

        return functional.binary_cross_entropy_with_logits(
            ordered_logits(raw, self._sign), events, reduction="none")

    def _evaluate(self, net: Any, xs: Any, es: Any) -> Any:
        """[Brier score per threshold..., summed cross-entropy] on all rows (float64,
        on the device), in chunks of rows."""
        import torch

        total = torch.zeros(es.shape[1] + 1, dtype=torch.float64, device=es.device)
        with torch.no_grad():
            for i in range(0, len(xs), _CHUNK):
                raw, e = net(xs[i : i + _CHUNK]), es[i : i + _CHUNK]
                prob = torch.sigmoid(ordered_logits(raw, self._sign))
                total[:-1] += ((prob - e) ** 2).to(torch.float64).sum(0)
                total[-1] += self._loss(raw, e).to(torch.float64).sum()
        return total / len(xs)

    @staticmethod
    def _named(stats: np.ndarray, prefix: str, labels: list[str]) -> dict[str, float]:
        out = {f"{prefix}_brier_{lab}": float(v) for lab, v in zip(labels, stats, strict=False)}
        out[f"{prefix}_bce"] = float(stats[len(labels)])
        return out

    def predict_proba_array(self, X: Any) -> np.ndarray:
        """Event probabilities, rows x thresholds (increasing), monotone by construction."""
        import torch

        xs = self._scale(X, torch, device="cpu")
        with torch.no_grad():
            prob = torch.cat([torch.sigmoid(ordered_logits(self.net_(xs[i : i + _CHUNK]),
                                                           self._sign))
                              for i in range(0, max(len(xs), 1), _CHUNK)])
        return np.asarray(prob.numpy(), dtype=np.float64)

    def _scale(self, X: Any, torch: Any, device: str | None = None) -> Any:
        x = (np.asarray(X, dtype=np.float32) - self.x_mean_) / self.x_std_
        return torch.from_numpy(x.astype(np.float32)).to(device or self.device_)
