"""Verification: scores, reference forecasts, plots and reports."""
