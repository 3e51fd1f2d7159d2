"""Model zoo: ``train`` builds an estimator from its config and trains it with loss
curves; ``mlp`` holds the PyTorch regressor. Import from the submodules (kept lazy so a
cached run loads neither scikit-learn nor PyTorch)."""
