"""Helpers for the service tests: encoded test images and a small model repository."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from model.card import Preprocessing

RGB_SPEC = Preprocessing(
    color_mode="RGB", resize_size=36, crop_size=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)
)
GRAY_SPEC = Preprocessing(color_mode="L", resize_size=36, crop_size=32, mean=(0.5,), std=(0.25,))


def pattern(size: tuple[int, int] = (48, 40), mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A deterministic, non-uniform image (so resize, crop and orientation matter)."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [(x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1), (x + y) % 256], axis=-1
    )
    noise = rng.integers(0, 40, size=base.shape)
    rgb = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    return rgb if mode == "RGB" else rgb.convert(mode)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    rows = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.fixture
def jpeg_bytes() -> bytes:
    return encode(pattern(), "JPEG", quality=90)


E2E_MAX_UPLOAD_BYTES = 300_000


@pytest.fixture(scope="session")
def e2e_server(model_repo_dir):
    """One real server (uvicorn subprocess) over the shared ``rgb`` and ``gray`` models."""
    from tests.serverutil import running_server

    env = {
        "RECTIFIER_DEFAULT_MODEL": "rgb",
        "RECTIFIER_MAX_UPLOAD_BYTES": str(E2E_MAX_UPLOAD_BYTES),
        "RECTIFIER_MAX_IMAGES_PER_REQUEST": "8",
    }
    with running_server(model_repo_dir, env=env) as server:
        yield server


@pytest.fixture(scope="session")
def http(e2e_server):
    import httpx

    with httpx.Client(base_url=e2e_server.url, timeout=30.0) as client:
        yield client
