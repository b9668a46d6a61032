"""Probabilities two ways, for the train/serve parity tests: the PyTorch checkpoint's on an
image file, and the served model's over HTTP."""

from __future__ import annotations

import numpy as np

# How far a served probability may be from the checkpoint's.
TOLERANCE = 1e-4


def torch_probabilities(checkpoint_path, image_path) -> np.ndarray:
    import torch

    from model.checkpoint import load_checkpoint
    from model.decoding import load_and_preprocess

    checkpoint = load_checkpoint(checkpoint_path)
    tensor = torch.from_numpy(load_and_preprocess(str(image_path), checkpoint.config.preprocessing))
    with torch.no_grad():
        logits = checkpoint.model(tensor[None])
    if checkpoint.config.task == "multilabel":
        return torch.sigmoid(logits)[0].numpy()
    return torch.softmax(logits, dim=1)[0].numpy()


def served_probabilities(http, name: str, data: bytes, labels: tuple[str, ...]) -> np.ndarray:
    response = http.post(
        f"/v1/models/{name}/predict", files={"image": ("x", data)}, params={"top_k": 1000}
    )
    assert response.status_code == 200, response.text
    scores = {s["label"]: s["probability"] for s in response.json()["predictions"][0]["top_k"]}
    return np.array([scores[label] for label in labels])
