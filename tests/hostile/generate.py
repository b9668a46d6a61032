"""Generate the hostile and broken input corpus: every case is built here, none hand-picked.

Each case is one raw HTTP request (method, target, headers, body and how the body is sent)
with the exact status and error code the server must answer. Valid-but-odd images (16-bit,
CMYK, 1x1, EXIF-rotated, animated GIF, ...) must get 200 with a prediction; where the answer
has a lossless reference (the first frame of an animation, the EXIF-rotated pixels) the case
names a reference case whose prediction it must equal.

Run ``python -m tests.hostile.generate OUT_DIR`` to write the corpus to disk
(``manifest.json`` plus one ``bodies/<id>.bin`` per case); ``tests/hostile/test_corpus.py``
generates it afresh into a temporary folder and sends every case to the real server.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import logging
import struct
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

Transfer = Literal["length", "chunked", "slow", "partial"]
Protocol = Literal["v1", "v2"]


@dataclass(frozen=True)
class Target:
    """What the corpus is aimed at: the server's limits and one model's signature."""

    model: str = "rgb"
    input_name: str = "image"
    input_shape: tuple[int, int, int] = (3, 32, 32)
    max_upload_bytes: int = 1024 * 1024
    max_images_per_request: int = 8


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    description: str
    method: str
    target: str  # the request target as sent, latin-1 (raw bytes 0x80-0xff allowed)
    headers: list[tuple[str, str]]
    body: bytes = field(repr=False)
    expect_status: int
    expect_code: str | None  # the V1 error code, None for 200 and for V2's flat error
    protocol: Protocol = "v1"
    transfer: Transfer = "length"
    reference: str | None = None  # a case whose prediction this one must equal
    expect_headers: tuple[str, ...] = ()  # response headers that must be present

    def manifest_entry(self, body_file: str) -> dict[str, object]:
        entry = asdict(self)
        del entry["body"]
        entry["body_file"] = body_file
        entry["body_bytes"] = len(self.body)
        return entry


# --------------------------------------------------------------------------- images


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


BOUNDARY = "rectifier-hostile-boundary"


def multipart(
    parts: list[tuple[str, str | None, str | None, bytes]], boundary: str = BOUNDARY
) -> bytes:
    """(field name, filename, content type, data) parts -> a multipart/form-data body."""
    out = io.BytesIO()
    for name, filename, content_type, data in parts:
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out.write(f"Content-Disposition: {disposition}\r\n".encode())
        if content_type is not None:
            out.write(f"Content-Type: {content_type}\r\n".encode())
        out.write(b"\r\n" + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


class CorpusBuilder:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.cases: list[Case] = []
        self.predict = f"/v1/models/{target.model}/predict"
        self.infer = f"/v2/models/{target.model}/infer"

    def add(self, case: Case) -> None:
        if any(existing.id == case.id for existing in self.cases):
            raise ValueError(f"duplicate case id {case.id}")
        self.cases.append(case)

    def raw_image(
        self,
        id: str,
        description: str,
        body: bytes,
        content_type: str | None,
        status: int,
        code: str | None,
        *,
        category: str = "image",
        reference: str | None = None,
        target: str | None = None,
    ) -> None:
        headers = [("Content-Type", content_type)] if content_type is not None else []
        self.add(
            Case(
                id,
                category,
                description,
                "POST",
                target or self.predict,
                headers,
                body,
                status,
                code,
                reference=reference,
            )
        )

    def upload(
        self,
        id: str,
        description: str,
        data: bytes,
        status: int,
        code: str | None,
        *,
        filename: str = "upload.bin",
        content_type: str | None = "application/octet-stream",
        category: str = "image",
        reference: str | None = None,
    ) -> None:
        body = multipart([("image", filename, content_type, data)])
        self.add(
            Case(
                id,
                category,
                description,
                "POST",
                self.predict,
                [("Content-Type", MULTIPART)],
                body,
                status,
                code,
                reference=reference,
            )
        )

    def v2(
        self,
        id: str,
        description: str,
        document: object,
        status: int,
        *,
        binary: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
        raw_json: bytes | None = None,
        target: str | None = None,
    ) -> None:
        header_json = raw_json if raw_json is not None else json.dumps(document).encode()
        request_headers = [("Content-Type", "application/json"), *(headers or [])]
        body = header_json
        if binary is not None:
            explicit = {name.lower() for name, _ in headers or []}
            request_headers = [("Content-Type", "application/octet-stream")]
            if "inference-header-content-length" not in explicit:
                request_headers.append(("Inference-Header-Content-Length", str(len(header_json))))
            request_headers += list(headers or [])
            body = header_json + binary
        self.add(
            Case(
                id,
                "v2",
                description,
                "POST",
                target or self.infer,
                request_headers,
                body,
                status,
                None,
                protocol="v2",
            )
        )


def build_corpus(target: Target | None = None) -> list[Case]:
    """Every hostile case, freshly generated."""
    builder = CorpusBuilder(target or Target())
    _image_cases(builder)
    _multipart_cases(builder)
    _http_cases(builder)
    _parameter_and_path_cases(builder)
    _v2_cases(builder)
    return builder.cases


def _image_cases(b: CorpusBuilder) -> None:
    photo = scene(96, 80, seed=1)
    jpeg = encode(photo, "JPEG", quality=90)
    noisy_jpeg = encode(scene(256, 256, seed=2), "JPEG", quality=95)
    png = encode(photo, "PNG")

    # Valid, if odd: 200 with a prediction.
    b.raw_image("png_plain", "an ordinary RGB PNG", png, "image/png", 200, None)
    b.raw_image("jpeg_plain", "an ordinary baseline JPEG", jpeg, "image/jpeg", 200, None)
    b.upload(
        "png_1x1",
        "a 1x1 PNG",
        encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"),
        200,
        None,
        filename="dot.png",
        content_type="image/png",
    )
    b.raw_image("png_rgb16", "a 16-bit-per-channel RGB PNG", png_rgb16(), "image/png", 200, None)
    gray16 = Image.fromarray(np.asarray(scene(40, 30, seed=4).convert("L"), dtype=np.uint16) * 257)
    b.raw_image(
        "png_gray16",
        "a 16-bit grayscale PNG (mode I;16)",
        encode(gray16, "PNG"),
        "image/png",
        200,
        None,
    )
    b.raw_image(
        "tiff_i16",
        "a 16-bit grayscale TIFF (mode I;16)",
        encode(gray16, "TIFF"),
        "image/tiff",
        200,
        None,
    )
    b.raw_image(
        "jpeg_cmyk",
        "a CMYK JPEG",
        encode(photo.convert("CMYK"), "JPEG", quality=90),
        "image/jpeg",
        200,
        None,
    )
    palette = photo.convert("RGBA")
    palette.putalpha(Image.linear_gradient("L").resize(photo.size))
    b.raw_image(
        "png_palette_trns",
        "a palette PNG with transparency",
        encode(palette.quantize(32), "PNG"),
        "image/png",
        200,
        None,
    )
    b.raw_image(
        "png_la",
        "a grayscale+alpha PNG (mode LA)",
        encode(photo.convert("LA"), "PNG"),
        "image/png",
        200,
        None,
    )
    b.raw_image("png_rgba", "an RGBA PNG", encode(palette, "PNG"), "image/png", 200, None)
    b.raw_image(
        "png_1bit", "a 1-bit PNG", encode(photo.convert("1"), "PNG"), "image/png", 200, None
    )
    b.raw_image(
        "bmp_1bit", "a 1-bit BMP", encode(photo.convert("1"), "BMP"), "image/bmp", 200, None
    )
    b.raw_image(
        "webp_lossless",
        "a lossless WebP",
        encode(photo, "WEBP", lossless=True),
        "image/webp",
        200,
        None,
    )
    b.raw_image(
        "jpeg_progressive",
        "a progressive JPEG",
        encode(photo, "JPEG", progressive=True),
        "image/jpeg",
        200,
        None,
    )
    gif = animated_gif()
    b.raw_image(
        "gif_first_frame_ref",
        "PNG of the animated GIF's first frame",
        first_frame_png(gif),
        "image/png",
        200,
        None,
    )
    b.raw_image(
        "gif_animated",
        "an animated GIF: the first frame is classified",
        gif,
        "image/gif",
        200,
        None,
        reference="gif_first_frame_ref",
    )
    tiff = multipage_tiff()
    b.raw_image(
        "tiff_first_page_ref",
        "PNG of the TIFF's first page",
        first_frame_png(tiff),
        "image/png",
        200,
        None,
    )
    b.raw_image(
        "tiff_multipage",
        "a two-page TIFF: the first page is classified",
        tiff,
        "image/tiff",
        200,
        None,
        reference="tiff_first_page_ref",
    )
    exif = exif_rotated_jpeg(scene(48, 40, seed=5))
    b.raw_image(
        "jpeg_exif_ref",
        "PNG of the EXIF-rotated JPEG, rotated upright",
        first_frame_png(exif),
        "image/png",
        200,
        None,
    )
    b.raw_image(
        "jpeg_exif_rotated",
        "a JPEG with EXIF orientation 6 is turned upright",
        exif,
        "image/jpeg",
        200,
        None,
        reference="jpeg_exif_ref",
    )

    # Not images, or broken ones: 400 invalid_image.
    b.upload(
        "zero_byte_file",
        "a multipart image field holding 0 bytes",
        b"",
        400,
        "invalid_image",
        filename="empty.png",
        content_type="image/png",
    )
    b.raw_image(
        "text_as_jpeg",
        "plain text labelled image/jpeg",
        b"hello, this is not a picture\n" * 4,
        "image/jpeg",
        400,
        "invalid_image",
    )
    b.raw_image("pdf_as_png", "a PDF labelled image/png", PDF, "image/png", 400, "invalid_image")
    b.upload(
        "zip_as_jpeg",
        "a ZIP archive uploaded as image/jpeg",
        zip_archive(),
        400,
        "invalid_image",
        filename="photo.jpg",
        content_type="image/jpeg",
    )
    b.raw_image(
        "html_as_png", "an HTML page labelled image/png", HTML, "image/png", 400, "invalid_image"
    )
    b.upload(
        "svg_upload",
        "an SVG (vector) image in the image field",
        SVG,
        400,
        "invalid_image",
        filename="logo.svg",
        content_type="image/svg+xml",
    )
    b.raw_image(
        "svg_raw", "an SVG body labelled image/svg+xml", SVG, "image/svg+xml", 400, "invalid_image"
    )
    b.raw_image(
        "jpeg_truncated",
        "a JPEG cut in half",
        noisy_jpeg[: len(noisy_jpeg) // 2],
        "image/jpeg",
        400,
        "invalid_image",
    )
    b.raw_image(
        "jpeg_header_only",
        "a JPEG cut after 300 bytes",
        noisy_jpeg[:300],
        "image/jpeg",
        400,
        "invalid_image",
    )
    big_png = encode(scene(256, 256, seed=2), "PNG")
    b.raw_image(
        "png_truncated",
        "a PNG cut in half",
        big_png[: len(big_png) // 2],
        "image/png",
        400,
        "invalid_image",
    )
    b.raw_image(
        "png_bad_crc",
        "a PNG whose IHDR checksum is wrong",
        png_bad_crc(png),
        "image/png",
        400,
        "invalid_image",
    )
    b.raw_image(
        "png_corrupt_idat",
        "a PNG whose compressed pixel data is junk",
        png_corrupt_idat(png),
        "image/png",
        400,
        "invalid_image",
    )
    b.raw_image(
        "jpeg_bad_huffman",
        "a JPEG with a corrupt Huffman table",
        jpeg_bad_huffman(jpeg),
        "image/jpeg",
        400,
        "invalid_image",
    )
    b.raw_image(
        "png_magic_only",
        "the 8-byte PNG signature and nothing else",
        b"\x89PNG\r\n\x1a\n",
        "image/png",
        400,
        "invalid_image",
    )
    b.raw_image(
        "ico_image",
        "an ICO image (a format we do not accept)",
        encode(scene(32, 32), "ICO"),
        "image/x-icon",
        400,
        "invalid_image",
    )
    b.raw_image(
        "gzip_png",
        "a gzip-compressed PNG labelled image/png",
        gzip.compress(png),
        "image/png",
        400,
        "invalid_image",
    )

    # Pixel bombs: 413 image_too_large, refused from the header.
    b.raw_image(
        "png_bomb_30000",
        "a 30000x30000 1-bit PNG of ~100 KB (decompression bomb)",
        png_bomb(),
        "image/png",
        413,
        "image_too_large",
    )
    b.raw_image(
        "gif_huge_screen",
        "a GIF whose logical screen is 65535x65535",
        gif_with_screen(65535, 65535),
        "image/gif",
        413,
        "image_too_large",
    )
    b.raw_image(
        "jpeg_huge_dims",
        "a JPEG whose header claims 65000x65000",
        jpeg_with_size(jpeg, 65000, 65000),
        "image/jpeg",
        413,
        "image_too_large",
    )
    wide = png_raw(100_000, 1, 8, 0, iter([bytes(100_000)]))
    b.raw_image(
        "png_100000x1",
        "a 100000x1 PNG: resizing its short side would explode",
        wide,
        "image/png",
        413,
        "image_too_large",
    )


def _multipart_cases(b: CorpusBuilder) -> None:
    png = encode(scene(64, 48, seed=6), "PNG")
    b.add(
        Case(
            "multipart_ok",
            "multipart",
            "one image in the image field",
            "POST",
            b.predict,
            [("Content-Type", MULTIPART)],
            multipart([("image", "a.png", "image/png", png)]),
            200,
            None,
        )
    )
    b.add(
        Case(
            "multipart_no_image_field",
            "multipart",
            "a multipart body whose only field is 'file'",
            "POST",
            b.predict,
            [("Content-Type", MULTIPART)],
            multipart([("file", "a.png", "image/png", png)]),
            400,
            "missing_image",
        )
    )
    b.add(
        Case(
            "multipart_two_wrong_fields",
            "multipart",
            "two fields, 'img' and 'picture', neither 'image'",
            "POST",
            b.predict,
            [("Content-Type", MULTIPART)],
            multipart([("img", "a.png", "image/png", png), ("picture", "b.png", "image/png", png)]),
            400,
            "missing_image",
        )
    )
    b.add(
        Case(
            "multipart_text_field_only",
            "multipart",
            "a plain text field named image (no file)",
            "POST",
            b.predict,
            [("Content-Type", MULTIPART)],
            multipart([("image", None, None, b"not a file")]),
            400,
            "invalid_image",
        )
    )
    b.add(
        Case(
            "multipart_wrong_boundary",
            "multipart",
            "the header's boundary is not the body's",
            "POST",
            b.predict,
            [("Content-Type", "multipart/form-data; boundary=somethingelse")],
            multipart([("image", "a.png", "image/png", png)]),
            400,
            "invalid_multipart",
        )
    )
    b.add(
        Case(
            "multipart_no_boundary",
            "multipart",
            "multipart/form-data without a boundary",
            "POST",
            b.predict,
            [("Content-Type", "multipart/form-data")],
            multipart([("image", "a.png", "image/png", png)]),
            400,
            "invalid_multipart",
        )
    )
    unterminated = multipart([("image", "a.png", "image/png", png)])[
        : -len(f"--{BOUNDARY}--\r\n") - 10
    ]
    b.add(
        Case(
            "multipart_unterminated",
            "multipart",
            "a multipart body cut before its closing boundary",
            "POST",
            b.predict,
            [("Content-Type", MULTIPART)],
            unterminated,
            400,
            "invalid_multipart",
        )
    )
    b.add(
        Case(
            "multipart_empty_body",
            "multipart",
            "multipart content type, empty body",
            "POST",
            b.predict,
            [("Content-Type", MULTIPART)],
            b"",
            400,
            "missing_image",
        )
    )
    b.add(
        Case(
            "multipart_batch_one_broken",
            "multipart",
            "a batch of three whose second image is junk",
            "POST",
            b.predict,
            [("Content-Type", MULTIPART)],
            multipart(
                [
                    ("image", "a.png", "image/png", png),
                    ("image", "b.png", "image/png", b"junk" * 10),
                    ("image", "c.png", "image/png", png),
                ]
            ),
            400,
            "invalid_image",
        )
    )
    too_many = b.target.max_images_per_request + 1
    b.add(
        Case(
            "multipart_too_many_images",
            "multipart",
            f"{too_many} images, one over the per-request limit",
            "POST",
            b.predict,
            [("Content-Type", MULTIPART)],
            multipart([("image", f"{i}.png", "image/png", png) for i in range(too_many)]),
            413,
            "payload_too_large",
        )
    )


def _http_cases(b: CorpusBuilder) -> None:
    png = encode(scene(64, 48, seed=6), "PNG")
    limit = b.target.max_upload_bytes
    oversize = png + bytes(limit + limit // 2 - len(png))
    noise = np.random.default_rng(9).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    large = encode(Image.fromarray(noise, "RGB"), "PNG", compress_level=0)
    assert len(large) < limit, "the large-but-allowed upload must fit the limit"
    b.raw_image(
        "large_upload_ok",
        f"a {len(large)}-byte PNG, under the limit",
        large,
        "image/png",
        200,
        None,
        category="http",
    )
    b.raw_image(
        "empty_body",
        "an empty body labelled image/png",
        b"",
        "image/png",
        400,
        "missing_image",
        category="http",
    )
    b.raw_image(
        "no_content_type",
        "a PNG body without a Content-Type",
        png,
        None,
        415,
        "unsupported_media_type",
        category="http",
    )
    b.raw_image(
        "text_plain_type",
        "a PNG body labelled text/plain",
        png,
        "text/plain",
        415,
        "unsupported_media_type",
        category="http",
    )
    b.raw_image(
        "json_type",
        "a PNG body labelled application/json",
        png,
        "application/json",
        415,
        "unsupported_media_type",
        category="http",
    )
    b.raw_image(
        "form_urlencoded",
        "a PNG body labelled application/x-www-form-urlencoded",
        png,
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        category="http",
    )
    b.add(
        Case(
            "oversize_content_length",
            "http",
            "a body over the upload limit, Content-Length declared",
            "POST",
            b.predict,
            [("Content-Type", "image/png")],
            oversize,
            413,
            "payload_too_large",
            transfer="partial",
        )
    )
    b.add(
        Case(
            "oversize_chunked",
            "http",
            "a body over the upload limit, chunked (no Content-Length)",
            "POST",
            b.predict,
            [("Content-Type", "image/png")],
            oversize,
            413,
            "payload_too_large",
            transfer="chunked",
        )
    )
    b.add(
        Case(
            "oversize_multipart",
            "http",
            "a multipart body over the upload limit",
            "POST",
            b.predict,
            [("Content-Type", MULTIPART)],
            multipart([("image", "big.png", "image/png", oversize)]),
            413,
            "payload_too_large",
            transfer="partial",
        )
    )
    b.add(
        Case(
            "chunked_ok",
            "http",
            "a small PNG sent chunked",
            "POST",
            b.predict,
            [("Content-Type", "image/png")],
            png,
            200,
            None,
            transfer="chunked",
        )
    )
    b.add(
        Case(
            "slow_body",
            "http",
            "slow-loris: the body trickles in a byte at a time",
            "POST",
            b.predict,
            [("Content-Type", "image/png")],
            png,
            408,
            "request_timeout",
            transfer="slow",
        )
    )
    b.add(
        Case(
            "oversize_header",
            "http",
            "a 64 KiB request header",
            "POST",
            b.predict,
            [("Content-Type", "image/png"), ("X-Padding", "a" * 65536)],
            png,
            431,
            "headers_too_large",
        )
    )
    b.add(
        Case(
            "many_headers",
            "http",
            "2000 request headers",
            "POST",
            b.predict,
            [("Content-Type", "image/png")] + [(f"X-H{i}", "v") for i in range(2000)],
            png,
            431,
            "headers_too_large",
        )
    )


def _parameter_and_path_cases(b: CorpusBuilder) -> None:
    png = encode(scene(64, 48, seed=6), "PNG")
    model = b.target.model

    def predict(
        id: str,
        description: str,
        target: str,
        status: int,
        code: str | None,
        method: str = "POST",
        category: str = "params",
        protocol: Protocol = "v1",
    ) -> None:
        headers = [("Content-Type", "image/png")] if method == "POST" else []
        body = png if method == "POST" else b""
        b.add(
            Case(
                id,
                category,
                description,
                method,
                target,
                headers,
                body,
                status,
                code,
                protocol=protocol,
            )
        )

    predict("top_k_1", "top_k=1", f"{b.predict}?top_k=1", 200, None)
    predict(
        "top_k_huge",
        "top_k=1000000: clamped to the labels",
        f"{b.predict}?top_k=1000000",
        200,
        None,
    )
    predict("top_k_overflow", "top_k=10**30: clamped", f"{b.predict}?top_k={10**30}", 200, None)
    predict("top_k_negative", "top_k=-1", f"{b.predict}?top_k=-1", 422, "invalid_parameter")
    predict("top_k_zero", "top_k=0", f"{b.predict}?top_k=0", 422, "invalid_parameter")
    predict("top_k_text", "top_k=abc", f"{b.predict}?top_k=abc", 422, "invalid_parameter")
    predict("top_k_float", "top_k=1.5", f"{b.predict}?top_k=1.5", 422, "invalid_parameter")
    predict("top_k_empty", "top_k= (empty)", f"{b.predict}?top_k=", 422, "invalid_parameter")
    predict("top_k_nan", "top_k=NaN", f"{b.predict}?top_k=NaN", 422, "invalid_parameter")

    p = "path"
    predict(
        "model_unknown",
        "an unknown model",
        "/v1/models/nosuchmodel/predict",
        404,
        "model_not_found",
        category=p,
    )
    predict(
        "model_dotdot",
        "model name '..' (raw)",
        "/v1/models/../predict",
        404,
        "model_not_found",
        category=p,
    )
    predict(
        "model_dotdot_encoded",
        "model name %2e%2e",
        "/v1/models/%2e%2e/predict",
        404,
        "model_not_found",
        category=p,
    )
    predict(
        "model_traversal_encoded_slash",
        "model name ..%2f..%2fetc%2fpasswd",
        "/v1/models/..%2f..%2fetc%2fpasswd/predict",
        404,
        "not_found",
        category=p,
    )
    predict(
        "model_traversal_raw",
        "raw ../../etc/passwd in the path",
        "/v1/models/../../etc/passwd/predict",
        404,
        "not_found",
        category=p,
    )
    predict(
        "model_nul",
        "model name with an encoded NUL",
        f"/v1/models/{model}%00/predict",
        404,
        "model_not_found",
        category=p,
    )
    predict(
        "model_nul_dotdot",
        "model name ..%00",
        "/v1/models/..%00/predict",
        404,
        "model_not_found",
        category=p,
    )
    predict(
        "model_non_utf8_encoded",
        "model name %ff%fe (not UTF-8)",
        "/v1/models/%ff%fe/predict",
        404,
        "model_not_found",
        category=p,
    )
    predict(
        "model_non_utf8_raw",
        "raw bytes 0xff 0xfe in the path",
        "/v1/models/\xff\xfe/predict",
        400,
        "invalid_request",
        category=p,
    )
    predict(
        "model_absolute",
        "model name %2fetc",
        "/v1/models/%2fetc/predict",
        404,
        "not_found",
        category=p,
    )
    predict(
        "model_backslash",
        "model name ..\\..\\windows",
        "/v1/models/..%5c..%5cwindows/predict",
        404,
        "model_not_found",
        category=p,
    )
    predict(
        "model_long",
        "a 4000-character model name",
        "/v1/models/" + "m" * 4000 + "/predict",
        404,
        "model_not_found",
        category=p,
    )
    predict(
        "version_unknown",
        "an unknown version",
        f"/v1/models/{model}/versions/999/predict",
        404,
        "version_not_found",
        category=p,
    )
    predict(
        "version_dotdot",
        "version '..'",
        f"/v1/models/{model}/versions/%2e%2e/predict",
        422,
        "invalid_parameter",
        category=p,
    )
    predict(
        "version_text",
        "version 'latest' (not a number)",
        f"/v1/models/{model}/versions/latest/predict",
        422,
        "invalid_parameter",
        category=p,
    )
    predict(
        "version_traversal",
        "version ..%2f..%2f1",
        f"/v1/models/{model}/versions/..%2f..%2f1/predict",
        404,
        "not_found",
        category=p,
    )
    predict(
        "info_dotdot",
        "GET /v1/models/%2e%2e",
        "/v1/models/%2e%2e",
        404,
        "model_not_found",
        method="GET",
        category=p,
    )
    predict(
        "info_nul",
        "GET /v1/models/%00",
        "/v1/models/%00",
        404,
        "model_not_found",
        method="GET",
        category=p,
    )
    predict(
        "predict_get",
        "GET on a predict route",
        b.predict,
        405,
        "method_not_allowed",
        method="GET",
        category=p,
    )
    predict(
        "predict_put",
        "PUT on a predict route",
        b.predict,
        405,
        "method_not_allowed",
        method="PUT",
        category=p,
    )
    predict("no_route", "an unknown route", "/v1/nothing/here", 404, "not_found", category=p)
    predict(
        "v2_model_dotdot",
        "V2 infer on model %2e%2e",
        "/v2/models/%2e%2e/infer",
        404,
        None,
        category=p,
        protocol="v2",
    )
    # Reload reads the models folder: names from the URL must never reach outside it.
    reloads = (
        ("reload_dotdot", "..", 404, "model_not_found"),
        ("reload_dotdot_encoded", "%2e%2e", 404, "model_not_found"),
        ("reload_traversal", "..%2f..%2fetc", 404, "not_found"),
        ("reload_nul", f"{model}%00", 404, "model_not_found"),
        ("reload_non_utf8", "%ff%fe", 404, "model_not_found"),
        ("reload_unknown", "nosuchmodel", 404, "model_not_found"),
        ("reload_ok", model, 200, None),
    )
    for case_id, name, status, code in reloads:
        target = f"/v1/models/{name}/reload"
        predict(case_id, f"reload model {name!r}", target, status, code, category=p)


def _v2_cases(b: CorpusBuilder) -> None:
    target = b.target
    c, h, w = target.input_shape
    name = target.input_name
    rng = np.random.default_rng(0)
    tensor = rng.normal(size=(1, c, h, w)).astype("<f4")

    def tensor_input(
        shape: list[int], datatype: str = "FP32", **extra: object
    ) -> dict[str, object]:
        return {"name": name, "shape": shape, "datatype": datatype, **extra}

    b.v2(
        "v2_json_ok",
        "V2 JSON tensor input",
        {"inputs": [tensor_input([1, c, h, w], data=tensor.ravel().tolist())]},
        200,
    )
    b.v2(
        "v2_binary_ok",
        "V2 binary tensor input",
        {"inputs": [tensor_input([1, c, h, w], parameters={"binary_data_size": tensor.nbytes})]},
        200,
        binary=tensor.tobytes(),
    )
    b.v2(
        "v2_shape_mismatch",
        "V2 tensor of shape [1, C, H+1, W]",
        {
            "inputs": [
                tensor_input([1, c, h + 1, w], parameters={"binary_data_size": c * (h + 1) * w * 4})
            ]
        },
        400,
        binary=bytes(c * (h + 1) * w * 4),
    )
    b.v2(
        "v2_shape_vs_data",
        "V2 JSON data shorter than its shape",
        {"inputs": [tensor_input([1, c, h, w], data=[0.0] * 10)]},
        400,
    )
    b.v2(
        "v2_rank_mismatch",
        "V2 tensor of rank 2",
        {"inputs": [tensor_input([1, c * h * w], data=tensor.ravel().tolist())]},
        400,
    )
    b.v2(
        "v2_datatype_mismatch",
        "V2 INT32 where FP32 is expected",
        {"inputs": [tensor_input([1, c, h, w], "INT32", data=[0] * (c * h * w))]},
        400,
    )
    b.v2(
        "v2_datatype_unknown",
        "V2 datatype FP128",
        {"inputs": [tensor_input([1, c, h, w], "FP128", data=[0] * (c * h * w))]},
        400,
    )
    b.v2(
        "v2_binary_size_larger",
        "binary_data_size larger than the bytes sent",
        {
            "inputs": [
                tensor_input([1, c, h, w], parameters={"binary_data_size": tensor.nbytes + 400})
            ]
        },
        400,
        binary=tensor.tobytes(),
    )
    b.v2(
        "v2_binary_size_smaller",
        "binary_data_size smaller than the bytes sent",
        {
            "inputs": [
                tensor_input([1, c, h, w], parameters={"binary_data_size": tensor.nbytes - 400})
            ]
        },
        400,
        binary=tensor.tobytes(),
    )
    b.v2(
        "v2_binary_size_negative",
        "negative binary_data_size",
        {"inputs": [tensor_input([1, c, h, w], parameters={"binary_data_size": -4})]},
        400,
        binary=tensor.tobytes(),
    )
    b.v2(
        "v2_binary_size_text",
        "binary_data_size as a string",
        {"inputs": [tensor_input([1, c, h, w], parameters={"binary_data_size": "lots"})]},
        400,
        binary=tensor.tobytes(),
    )
    b.v2(
        "v2_shape_negative",
        "a negative dimension in the shape",
        {"inputs": [tensor_input([-1, c, h, w], data=tensor.ravel().tolist())]},
        400,
    )
    b.v2(
        "v2_shape_huge",
        "a shape of 2^62 elements with a small body",
        {
            "inputs": [
                tensor_input([2**31, c, h, w], parameters={"binary_data_size": tensor.nbytes})
            ]
        },
        400,
        binary=tensor.tobytes(),
    )
    b.v2(
        "v2_header_length_too_big",
        "Inference-Header-Content-Length past the end of the body",
        {"inputs": [tensor_input([1, c, h, w], parameters={"binary_data_size": tensor.nbytes})]},
        400,
        raw_json=None,
        binary=tensor.tobytes(),
        headers=[("Inference-Header-Content-Length", "99999999")],
    )
    b.v2(
        "v2_header_length_negative",
        "Inference-Header-Content-Length: -5",
        {"inputs": [tensor_input([1, c, h, w], parameters={"binary_data_size": tensor.nbytes})]},
        400,
        binary=tensor.tobytes(),
        headers=[("Inference-Header-Content-Length", "-5")],
    )
    nan = tensor.copy()
    nan[0, 0, 0, 0] = np.nan
    b.v2(
        "v2_nan_binary",
        "a NaN in binary FP32 data",
        {"inputs": [tensor_input([1, c, h, w], parameters={"binary_data_size": nan.nbytes})]},
        400,
        binary=nan.tobytes(),
    )
    inf = tensor.copy()
    inf[0, 1, 2, 3] = np.inf
    b.v2(
        "v2_inf_binary",
        "an Inf in binary FP32 data",
        {"inputs": [tensor_input([1, c, h, w], parameters={"binary_data_size": inf.nbytes})]},
        400,
        binary=inf.tobytes(),
    )
    text = json.dumps({"inputs": [tensor_input([1, c, h, w], data=[0.5] * (c * h * w))]})
    b.v2(
        "v2_nan_json",
        "a NaN literal in JSON data",
        None,
        400,
        raw_json=text.replace("0.5", "NaN", 1).encode(),
    )
    b.v2(
        "v2_inf_json",
        "an Infinity literal in JSON data",
        None,
        400,
        raw_json=text.replace("0.5", "Infinity", 1).encode(),
    )
    b.v2(
        "v2_overflow_json",
        "1e999 (overflows FP32) in JSON data",
        None,
        400,
        raw_json=text.replace("0.5", "1e999", 1).encode(),
    )
    b.v2("v2_invalid_json", "a body that is not JSON", None, 400, raw_json=b'{"inputs": [')
    b.v2("v2_not_object", "a JSON array instead of an object", [1, 2, 3], 400)
    b.v2("v2_no_inputs", "no 'inputs' member", {"outputs": []}, 400)
    b.v2(
        "v2_wrong_input_name",
        "an input name the model does not have",
        {
            "inputs": [
                {
                    "name": "nope",
                    "shape": [1, c, h, w],
                    "datatype": "FP32",
                    "data": tensor.ravel().tolist(),
                }
            ]
        },
        400,
    )
    b.v2(
        "v2_bytes_image_broken",
        "a BYTES image input holding junk",
        {
            "inputs": [
                {
                    "name": "encoded_image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [base64.b64encode(b"junk" * 8).decode()],
                }
            ]
        },
        400,
    )
    b.v2(
        "v2_unknown_model",
        "V2 infer on an unknown model",
        {"inputs": [tensor_input([1, c, h, w], data=tensor.ravel().tolist())]},
        404,
        target="/v2/models/nosuchmodel/infer",
    )
    b.v2(
        "v2_gzip_bomb",
        "a gzip body that inflates past the upload limit",
        None,
        413,
        raw_json=gzip.compress(b" " * (target.max_upload_bytes * 4)),
        headers=[("Content-Encoding", "gzip")],
    )


def write_corpus(out_dir: Path, target: Target | None = None) -> list[Case]:
    """Write ``manifest.json`` and ``bodies/<id>.bin`` under ``out_dir``."""
    cases = build_corpus(target)
    bodies = out_dir / "bodies"
    bodies.mkdir(parents=True, exist_ok=True)
    manifest = []
    for case in cases:
        body_file = f"bodies/{case.id}.bin"
        (out_dir / body_file).write_bytes(case.body)
        manifest.append(case.manifest_entry(body_file))
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=True) + "\n")
    log.info("wrote %d cases to %s", len(cases), out_dir)
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model", default=Target.model)
    parser.add_argument("--max-upload-bytes", type=int, default=Target.max_upload_bytes)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_corpus(args.out_dir, Target(model=args.model, max_upload_bytes=args.max_upload_bytes))


if __name__ == "__main__":
    main()
