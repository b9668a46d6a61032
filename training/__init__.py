"""Datasets, the training loop, activation diagnostics and sweeps."""
