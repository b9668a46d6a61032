"""Builders of the batch-inference tests (``rectifier predict``): the committed demo model,
what the server's path gives for one file, and a small video written with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers.images import scene
from tests.helpers.server import REPO_ROOT

DEMO_MODEL = REPO_ROOT / "models" / "demo"
GOOD_IMAGES = 12  # the good images of the batch tests' image folder
FRAMES = 30
RATE = 10
MODEL_FILE = DEMO_MODEL / "1" / "model.onnx"


def served_probabilities(path: Path) -> np.ndarray:
    """What the server's decode + preprocess + session give for one file."""
    import onnxruntime as ort

    from model.card import read_card
    from model.decoding import decode_image
    from model.preprocess import preprocess_image
    from service.plumbing.settings import Settings

    card = read_card(MODEL_FILE)
    image = decode_image(path.read_bytes(), card.preprocessing, Settings().max_image_pixels)
    batch = preprocess_image(image, card.preprocessing)[None]
    session = ort.InferenceSession(str(MODEL_FILE), providers=["CPUExecutionProvider"])
    return session.run([card.output_name], {card.input_name: batch})[0][0]


def write_video(path: Path, frames: int = FRAMES, rate: int = RATE) -> Path:
    """An H.264 (or MPEG-4) clip of moving scenes, written with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            picture = np.asarray(scene(64, 48, seed=index % 5))
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
