"""Model zoo: ``types`` registers every model type (settings, estimator, requirements,
loss curve), ``settings`` holds the built-in types' keys, ``train`` builds an estimator
from its config and trains it with loss curves, ``mlp`` holds the PyTorch regressor,
``probability`` the per-threshold classifiers and ``probability_mlp`` the PyTorch MLP with
one output per threshold. Import from the submodules (kept lazy so
a cached run loads neither scikit-learn nor PyTorch)."""
