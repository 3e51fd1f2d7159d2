"""The team tracking server: MLflow's own server on PostgreSQL with auth, run by wxops."""
