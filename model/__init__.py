"""CNN architectures with swappable activations, checkpoints, and ONNX export.

The torch-free modules (``card``, ``preprocess``, ``cli``) are shared with the service;
importing this package imports nothing heavy.
"""
