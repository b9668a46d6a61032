"""Comparing activations: ``rectifier sweep`` (one architecture and budget per activation
and seed) and ``rectifier study`` (the activation study: sweeps over training regimes, with
dead units per layer and epoch).

One concern per module:

- ``plan``: what a study trains (activations, regimes, budget); torch-free.
- ``cli``: the ``rectifier study`` command; torch-free at import.
- ``records``: what one run of a sweep or a study records, and a study's result.
- ``latency``: onnxruntime latency of an exported model.
- ``sweep``: running a sweep and writing its folder; ``study``: the same for a study.
- ``stats``: means and spreads over seeds; ``tables``: the markdown tables;
  ``plots``: the charts.
"""
