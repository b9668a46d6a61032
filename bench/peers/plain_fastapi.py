"""Peer: the FastAPI + onnxruntime endpoint most people write first, without batching.

A sync endpoint (FastAPI runs it in its thread pool), PIL decode and hand-written
preprocessing, one ``session.run`` per request with batch 1. Same model file, same
multipart field, same response shape (top-5 labels with probabilities) as Rectifier.

    PEER_MODEL=models/resnet18/1/model.onnx uvicorn bench.peers.plain_fastapi:app \
        --host 127.0.0.1 --port 8200 --loop uvloop --http httptools
"""

from __future__ import annotations

import io
from typing import Any

from fastapi import FastAPI, File, UploadFile
from PIL import Image

from bench.peers.common import load_peer_model

app = FastAPI(title="plain FastAPI + onnxruntime")
model = load_peer_model()


@app.post("/predict")
def predict(image: UploadFile = File(...)) -> dict[str, Any]:
    with Image.open(io.BytesIO(image.file.read())) as decoded:
        batch = model.preprocess(decoded)[None]
    return {"predictions": model.predict(batch)}


@app.get("/livez")
def livez() -> dict[str, str]:
    return {"status": "ok"}
