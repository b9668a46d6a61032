"""Peer: LitServe serving the same ONNX file with its own dynamic batching.

LitServe's README claims "at least 2x faster than plain FastAPI"; issue 17 asks Rectifier to
be at least twice as fast as LitServe at c=16 and c=1. Its server process parses the
multipart form (Starlette + python-multipart) and hands requests to one inference worker
process over a queue, which decodes them, batches up to ``PEER_MAX_BATCH`` images (waiting
at most ``PEER_BATCH_TIMEOUT_S`` for a batch to fill) and runs one ``session.run`` per batch.
Same model file, multipart field ``image`` and response shape (top-5) as Rectifier.

    PEER_MODEL=models/demo/1/model.onnx python bench/peers/litserve_service.py --port 8400
"""

# No ``from __future__ import annotations``: LitServe reads decode_request's annotation at
# run time, and only the Request class itself makes it parse the form.
import argparse
import io
import os
import sys
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
from fastapi import Request
from PIL import Image

if __package__ in (None, ""):  # run as a script: the repository on the path
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from bench.peers.common import PeerModel, load_peer_model

MAX_BATCH = int(os.environ.get("PEER_MAX_BATCH", "32"))
BATCH_TIMEOUT_S = float(os.environ.get("PEER_BATCH_TIMEOUT_S", "0.005"))


class Classifier(ls.LitAPI):  # type: ignore[misc]
    def setup(self, device: str) -> None:
        self.model: PeerModel = load_peer_model()

    def decode_request(self, request: Request) -> np.ndarray:
        upload = request["image"]  # LitServe hands over the parsed form: a Starlette UploadFile
        with Image.open(io.BytesIO(upload.file.read())) as decoded:
            return self.model.preprocess(decoded)

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, batch: np.ndarray) -> list[list[dict[str, Any]]]:
        return self.model.predict(batch)

    def unbatch(self, output: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        return output

    def encode_response(self, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {"predictions": [output]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    api = Classifier(max_batch_size=MAX_BATCH, batch_timeout=BATCH_TIMEOUT_S)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=60)
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
