"""Test pictures: deterministic patterns and the preprocessing specs the model and service
tests decode them with, and the hostile corpus's odd but valid pictures, broken files and
bombs.

Pillow writes what it can; the rest (16-bit RGB PNG, a 30000x30000 PNG bomb, a GIF whose
screen claims 65535x65535, a JPEG with an impossible Huffman table, bad checksums) is
written or patched by hand here, so every file is generated, none hand-picked.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageDraw

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


def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """A deterministic, non-uniform RGB picture (gradients, shapes, a little noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [
            255 * x / max(width - 1, 1),
            255 * y / max(height - 1, 1),
            128 + 100 * np.sin((x + 2 * y) / max(width, height) * 6.0),
        ],
        axis=-1,
    )
    pixels += rng.normal(0, 8, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 5, height // 6, width // 2, height // 2), fill=(230, 40, 40))
    draw.rectangle(
        (width // 2, height // 2, width - width // 8, height - height // 8), fill=(20, 20, 160)
    )
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_raw(
    width: int, height: int, bit_depth: int, color_type: int, rows: Iterator[bytes]
) -> bytes:
    """A PNG written by hand (filter 0 rows), for what Pillow will not save itself."""
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(b"\x00" + row) for row in rows) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    rows = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def png_bomb(side: int = 30000) -> bytes:
    """A valid side x side 1-bit PNG of zeros: ~100 KB on the wire, ~900 megapixels decoded."""
    row = bytes((side + 7) // 8)
    return png_raw(side, side, 1, 0, (row for _ in range(side)))


def png_rgb16(width: int = 40, height: int = 30) -> bytes:
    pixels = np.asarray(scene(width, height, seed=3), dtype=np.uint16) * 257
    return png_raw(width, height, 16, 2, (r.astype(">u2").tobytes() for r in pixels))


def gif_with_screen(width: int, height: int) -> bytes:
    """A 1x1 GIF whose logical screen claims width x height (Pillow's size for a GIF)."""
    data = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose SOF header claims width x height (the scan data stays small)."""
    buffer = bytearray(data)
    index = 2
    while index < len(buffer):
        marker, length = buffer[index + 1], struct.unpack(">H", buffer[index + 2 : index + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            buffer[index + 5 : index + 9] = struct.pack(">HH", height, width)
            return bytes(buffer)
        index += 2 + length
    raise ValueError("no SOF marker in the JPEG")


def jpeg_bad_huffman(data: bytes) -> bytes:
    """A JPEG whose first Huffman table claims more codes than a table can hold (>256)."""
    buffer = bytearray(data)
    index = buffer.find(b"\xff\xc4")
    if index < 0:
        raise ValueError("no DHT marker in the JPEG")
    counts = index + 5  # marker(2) length(2) class/id(1), then 16 code counts
    buffer[counts : counts + 16] = b"\xff" * 16
    return bytes(buffer)


def png_bad_crc(data: bytes) -> bytes:
    """Flip the IHDR checksum."""
    buffer = bytearray(data)
    buffer[29:33] = bytes(b ^ 0xFF for b in buffer[29:33])
    return bytes(buffer)


def png_corrupt_idat(data: bytes) -> bytes:
    """Overwrite the compressed pixel data with junk (and fix the CRC, so only zlib fails)."""
    start = data.find(b"IDAT")
    length = struct.unpack(">I", data[start - 4 : start])[0]
    junk = bytes((i * 37 + 11) % 256 for i in range(length))
    chunk = png_chunk(b"IDAT", junk)
    return data[: start - 4] + chunk + data[start + 4 + length + 4 :]


def exif_rotated_jpeg(image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def first_frame_png(data: bytes) -> bytes:
    """The lossless reference a server must classify the same as ``data``."""
    from PIL import ImageOps

    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        upright = ImageOps.exif_transpose(image.convert("RGB") if image.mode == "P" else image)
        return encode(upright.convert("RGB"), "PNG")


def animated_gif() -> bytes:
    frames = [scene(48, 40, seed=i).quantize(64) for i in range(3)]
    frames[1] = Image.new("RGB", (48, 40), (250, 250, 0)).quantize(8)
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def multipage_tiff() -> bytes:
    pages = [scene(48, 40, seed=7), Image.new("RGB", (48, 40), (0, 255, 0))]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b'<circle cx="32" cy="32" r="20" fill="red"/></svg>\n'
)
HTML = b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>\n"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def zip_archive() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("image.png", encode(scene(8, 8), "PNG"))
    return buffer.getvalue()


# --------------------------------------------------------------------------- requests
