"""Generate the hostile and broken input corpus: every case is built here, none hand-picked.

Each case is one raw HTTP request (method, target, headers, body and how the body is sent)
with the exact status and error code the server must answer. Valid-but-odd images (16-bit,
CMYK, 1x1, EXIF-rotated, animated GIF, ...) must get 200 with a prediction; where the answer
has a lossless reference (the first frame of an animation, the EXIF-rotated pixels) the case
names a reference case whose prediction it must equal. The image bytes come from
``tests/helpers/images.py``.

Run ``python -m tests.hostile.generate OUT_DIR`` to write the corpus to disk
(``manifest.json`` plus one ``bodies/<id>.bin`` per case); ``tests/hostile/test_corpus.py``
generates it afresh and sends every case to the real server.
"""

# The cases are tables, one case per line, so their lines may run past 100 characters.
# ruff: noqa: E501

from __future__ import annotations

import argparse
import base64
import gzip
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydicom.pixels import convert_color_space

from tests.helpers.dicom import (
    SYNTAXES,
    colour_picture,
    ct_bytes,
    ct_slice,
    dicom_bytes,
    huge_dimensions,
    multi_frame,
    with_32_bits_stored,
    with_bad_rle_segment_offset,
    with_bad_vr,
    with_transfer_syntax,
    without_pixel_data,
)
from tests.helpers.images import (
    HTML,
    PDF,
    SVG,
    animated_gif,
    encode,
    exif_rotated_jpeg,
    first_frame_png,
    gif_with_screen,
    jpeg_bad_huffman,
    jpeg_with_size,
    multipage_tiff,
    png_bad_crc,
    png_bomb,
    png_corrupt_idat,
    png_raw,
    png_rgb16,
    scene,
    zip_archive,
)
from tests.helpers.multipart import BOUNDARY, MULTIPART, Part, multipart

log = logging.getLogger(__name__)

Transfer = Literal["length", "chunked", "slow", "slow_head", "partial"]
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

    def raw(
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
        query: str = "",
    ) -> None:
        """The body is the image (or what pretends to be one)."""
        headers = [("Content-Type", content_type)] if content_type is not None else []
        self.add(Case(id, category, description, "POST", self.predict + query, headers, body,
                      status, code, reference=reference))  # fmt: skip

    def form(
        self,
        id: str,
        description: str,
        parts: Sequence[Part],
        status: int,
        code: str | None,
        *,
        category: str = "multipart",
        content_type: str = MULTIPART,
        body: bytes | None = None,
    ) -> None:
        """A multipart form (``body`` overrides the encoded ``parts``)."""
        data = multipart(parts) if body is None else body
        self.add(Case(id, category, description, "POST", self.predict,
                      [("Content-Type", content_type)], data, status, code))  # fmt: skip

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
        self.add(Case(id, "v2", description, "POST", target or self.infer, request_headers,
                      body, status, None, protocol="v2"))  # fmt: skip


def build_corpus(target: Target | None = None) -> list[Case]:
    """Every hostile case, freshly generated."""
    builder = CorpusBuilder(target or Target())
    _image_cases(builder)
    _dicom_cases(builder)
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
    big_png = encode(scene(256, 256, seed=2), "PNG")
    gray16 = Image.fromarray(np.asarray(scene(40, 30, seed=4).convert("L"), dtype=np.uint16) * 257)
    palette = photo.convert("RGBA")
    palette.putalpha(Image.linear_gradient("L").resize(photo.size))
    gif, tiff = animated_gif(), multipage_tiff()
    exif = exif_rotated_jpeg(scene(48, 40, seed=5))
    dot = encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG")

    # Valid, if odd: 200 with a prediction (equal to the named reference's where given).
    # fmt: off
    valid: list[tuple[str, str, bytes, str, str | None]] = [
        ("png_plain", "an ordinary RGB PNG", png, "image/png", None),
        ("jpeg_plain", "an ordinary baseline JPEG", jpeg, "image/jpeg", None),
        ("png_rgb16", "a 16-bit-per-channel RGB PNG", png_rgb16(), "image/png", None),
        ("png_gray16", "a 16-bit grayscale PNG (mode I;16)", encode(gray16, "PNG"), "image/png", None),
        ("tiff_i16", "a 16-bit grayscale TIFF (mode I;16)", encode(gray16, "TIFF"), "image/tiff", None),
        ("jpeg_cmyk", "a CMYK JPEG", encode(photo.convert("CMYK"), "JPEG", quality=90), "image/jpeg", None),
        ("png_palette_trns", "a palette PNG with transparency", encode(palette.quantize(32), "PNG"), "image/png", None),
        ("png_la", "a grayscale+alpha PNG (mode LA)", encode(photo.convert("LA"), "PNG"), "image/png", None),
        ("png_rgba", "an RGBA PNG", encode(palette, "PNG"), "image/png", None),
        ("png_1bit", "a 1-bit PNG", encode(photo.convert("1"), "PNG"), "image/png", None),
        ("bmp_1bit", "a 1-bit BMP", encode(photo.convert("1"), "BMP"), "image/bmp", None),
        ("webp_lossless", "a lossless WebP", encode(photo, "WEBP", lossless=True), "image/webp", None),
        ("jpeg_progressive", "a progressive JPEG", encode(photo, "JPEG", progressive=True), "image/jpeg", None),
        ("jpeg_exif_ref", "PNG of the EXIF-rotated JPEG, rotated upright", first_frame_png(exif), "image/png", None),
        ("jpeg_exif_rotated", "a JPEG with EXIF orientation 6 is turned upright", exif, "image/jpeg", "jpeg_exif_ref"),
    ]
    # Not images, or broken ones: 400 invalid_image.
    broken: list[tuple[str, str, bytes, str]] = [
        ("text_as_jpeg", "plain text labelled image/jpeg", b"hello, this is not a picture\n" * 4, "image/jpeg"),
        ("pdf_as_png", "a PDF labelled image/png", PDF, "image/png"),
        ("html_as_png", "an HTML page labelled image/png", HTML, "image/png"),
        ("svg_raw", "an SVG body labelled image/svg+xml", SVG, "image/svg+xml"),
        ("jpeg_truncated", "a JPEG cut in half", noisy_jpeg[: len(noisy_jpeg) // 2], "image/jpeg"),
        ("jpeg_header_only", "a JPEG cut after 300 bytes", noisy_jpeg[:300], "image/jpeg"),
        ("png_truncated", "a PNG cut in half", big_png[: len(big_png) // 2], "image/png"),
        ("png_bad_crc", "a PNG whose IHDR checksum is wrong", png_bad_crc(png), "image/png"),
        ("png_corrupt_idat", "a PNG whose compressed pixel data is junk", png_corrupt_idat(png), "image/png"),
        ("jpeg_bad_huffman", "a JPEG with a corrupt Huffman table", jpeg_bad_huffman(jpeg), "image/jpeg"),
        ("png_magic_only", "the 8-byte PNG signature and nothing else", b"\x89PNG\r\n\x1a\n", "image/png"),
        ("ico_image", "an ICO image (a format we do not accept)", encode(scene(32, 32), "ICO"), "image/x-icon"),
        ("gzip_png", "a gzip-compressed PNG labelled image/png", gzip.compress(png), "image/png"),
    ]
    # Pixel bombs: 413 image_too_large, refused from the header.
    bombs: list[tuple[str, str, bytes, str]] = [
        ("png_bomb_30000", "a 30000x30000 1-bit PNG of ~100 KB (decompression bomb)", png_bomb(), "image/png"),
        ("gif_huge_screen", "a GIF whose logical screen is 65535x65535", gif_with_screen(65535, 65535), "image/gif"),
        ("jpeg_huge_dims", "a JPEG whose header claims 65000x65000", jpeg_with_size(jpeg, 65000, 65000), "image/jpeg"),
        ("png_100000x1", "a 100000x1 PNG: resizing its short side would explode",
         png_raw(100_000, 1, 8, 0, iter([bytes(100_000)])), "image/png"),
    ]
    # Several frames and none chosen: 422 multiple_frames, naming the count.
    multi_frame: list[tuple[str, str, bytes, str]] = [
        ("gif_animated", "an animated GIF (3 frames)", gif, "image/gif"),
        ("tiff_multipage", "a two-page TIFF", tiff, "image/tiff"),
    ]
    uploads: list[tuple[str, str, bytes, str, str, int, str | None]] = [
        ("png_1x1", "a 1x1 PNG", dot, "dot.png", "image/png", 200, None),
        ("zero_byte_file", "a multipart image field holding 0 bytes", b"", "empty.png", "image/png", 400, "invalid_image"),
        ("zip_as_jpeg", "a ZIP archive uploaded as image/jpeg", zip_archive(), "photo.jpg", "image/jpeg", 400, "invalid_image"),
        ("svg_upload", "an SVG (vector) image in the image field", SVG, "logo.svg", "image/svg+xml", 400, "invalid_image"),
    ]
    # fmt: on
    for id, description, body, content_type, reference in valid:
        b.raw(id, description, body, content_type, 200, None, reference=reference)
    for id, description, body, content_type in broken:
        b.raw(id, description, body, content_type, 400, "invalid_image")
    for id, description, body, content_type in bombs:
        b.raw(id, description, body, content_type, 413, "image_too_large")
    for id, description, body, content_type in multi_frame:
        b.raw(id, description, body, content_type, 422, "multiple_frames")
    # A chosen frame is classified like that frame on its own; one past the end is refused.
    # fmt: off
    chosen: list[tuple[str, str, bytes, str, str, int, str | None, str | None]] = [
        ("gif_first_frame_ref", "PNG of the animated GIF's first frame", first_frame_png(gif), "image/png", "", 200, None, None),
        ("gif_frame_0", "the animated GIF with ?frame=0", gif, "image/gif", "?frame=0", 200, None, "gif_first_frame_ref"),
        ("tiff_first_page_ref", "PNG of the TIFF's first page", first_frame_png(tiff), "image/png", "", 200, None, None),
        ("tiff_page_0", "the two-page TIFF with ?frame=0", tiff, "image/tiff", "?frame=0", 200, None, "tiff_first_page_ref"),
        ("gif_frame_past_end", "the 3-frame GIF with ?frame=3", gif, "image/gif", "?frame=3", 400, "invalid_image", None),
        ("png_frame_1", "a single-frame PNG with ?frame=1", png, "image/png", "?frame=1", 400, "invalid_image", None),
        ("frame_negative", "?frame=-1", png, "image/png", "?frame=-1", 422, "invalid_parameter", None),
        ("frame_text", "?frame=first", png, "image/png", "?frame=first", 422, "invalid_parameter", None),
    ]
    # fmt: on
    for id, description, body, content_type, query, status, code, reference in chosen:
        b.raw(id, description, body, content_type, status, code, reference=reference, query=query)
    for id, description, data, filename, content_type, status, code in uploads:
        part = ("image", filename, content_type, data)
        b.form(id, description, [part], status, code, category="image")


def _dicom_cases(b: CorpusBuilder) -> None:
    """DICOM files (with patient identifiers set) as hospitals send them, and broken ones."""
    ct = ct_bytes()
    ybr = convert_color_space(colour_picture(), "RGB", "YBR_FULL")
    dicom = "application/dicom"
    png = encode(scene(40, 40, seed=8), "PNG")
    # fmt: off
    valid: list[tuple[str, str, bytes, str, str | None]] = [
        ("dicom_ct", "a 12-bit CT slice, rescaled and windowed", ct, dicom, None),
        ("dicom_ct_rle", "the CT slice, RLE Lossless", ct_bytes(syntax=SYNTAXES["rle"]), dicom, "dicom_ct"),
        ("dicom_ct_jpegls", "the CT slice, JPEG-LS Lossless", ct_bytes(syntax=SYNTAXES["jpegls"]), dicom, "dicom_ct"),
        ("dicom_ct_j2k", "the CT slice, JPEG 2000 Lossless", ct_bytes(syntax=SYNTAXES["j2k"]), dicom, "dicom_ct"),
        ("dicom_as_octet_stream", "the CT slice sent as application/octet-stream", ct, "application/octet-stream", "dicom_ct"),
        ("dicom_monochrome1", "a MONOCHROME1 slice", dicom_bytes(ct_slice(), photometric="MONOCHROME1", bits_stored=12), dicom, None),
        ("dicom_rgb", "an RGB secondary capture", dicom_bytes(colour_picture(), photometric="RGB", modality="OT"), dicom, None),
        ("dicom_ybr_full", "a YBR_FULL secondary capture", dicom_bytes(ybr, photometric="YBR_FULL", modality="OT"), dicom, None),
    ]
    broken: list[tuple[str, str, bytes, str, int, str]] = [
        ("png_as_dicom", "a PNG labelled application/dicom", png, dicom, 400, "invalid_image"),
        ("dicom_truncated", "a DICOM file cut in half", ct[: len(ct) // 2], dicom, 400, "invalid_image"),
        ("dicom_no_pixel_data", "a DICOM file without Pixel Data", without_pixel_data(ct), dicom, 400, "invalid_image"),
        ("dicom_unsupported_syntax", "a DICOM file in MPEG2 (no decoder)",
         with_transfer_syntax(ct, "1.2.840.10008.1.2.4.100"), dicom, 415, "unsupported_media_type"),
        ("dicom_bits_stored_32", "a DICOM file storing 32 bits per sample", with_32_bits_stored(), dicom, 400, "invalid_image"),
        ("dicom_huge_dims", "a DICOM header claiming 60000x60000", huge_dimensions(), dicom, 413, "image_too_large"),
        ("dicom_bad_vr", "a DICOM element with the VR 'ZZ'", with_bad_vr(ct), dicom, 400, "invalid_image"),
        ("dicom_rle_panic", "an RLE segment table that makes the Rust decoder panic",
         with_bad_rle_segment_offset(ct_bytes(size=40, syntax=SYNTAXES["rle"])), dicom, 400, "invalid_image"),
        ("dicom_multi_frame", "a 3-frame DICOM file, no frame chosen", multi_frame(3), dicom, 422, "multiple_frames"),
    ]
    # fmt: on
    for id, description, body, content_type, reference in valid:
        b.raw(id, description, body, content_type, 200, None, category="dicom", reference=reference)
    for id, description, body, content_type, status, code in broken:
        b.raw(id, description, body, content_type, status, code, category="dicom")
    b.raw("dicom_frame_1", "the 3-frame DICOM file with ?frame=1", multi_frame(3), dicom, 200,
          None, category="dicom", query="?frame=1")  # fmt: skip
    b.form("multipart_dicom_part", "a DICOM part in a multipart form",
           [("image", "scan.dcm", dicom, ct)], 200, None, category="dicom")  # fmt: skip
    b.form("multipart_png_as_dicom_part", "a PNG part labelled application/dicom",
           [("image", "scan.dcm", dicom, png)], 400, "invalid_image", category="dicom")  # fmt: skip


def _multipart_cases(b: CorpusBuilder) -> None:
    png = encode(scene(64, 48, seed=6), "PNG")
    one = [("image", "a.png", "image/png", png)]
    ending = len(f"--{BOUNDARY}--\r\n") + 10
    too_many = b.target.max_images_per_request + 1
    # fmt: off
    b.form("multipart_ok", "one image in the image field", one, 200, None)
    b.form("multipart_no_image_field", "a multipart body whose only field is 'file'",
           [("file", "a.png", "image/png", png)], 400, "missing_image")
    b.form("multipart_two_wrong_fields", "two fields, 'img' and 'picture', neither 'image'",
           [("img", "a.png", "image/png", png), ("picture", "b.png", "image/png", png)],
           400, "missing_image")
    b.form("multipart_text_field_only", "a plain text field named image (no file)",
           [("image", None, None, b"not a file")], 400, "invalid_image")
    b.form("multipart_wrong_boundary", "the header's boundary is not the body's", one,
           400, "invalid_multipart", content_type="multipart/form-data; boundary=somethingelse")
    b.form("multipart_no_boundary", "multipart/form-data without a boundary", one,
           400, "invalid_multipart", content_type="multipart/form-data")
    b.form("multipart_unterminated", "a multipart body cut before its closing boundary", one,
           400, "invalid_multipart", body=multipart(one)[:-ending])
    b.form("multipart_empty_body", "multipart content type, empty body", [], 400,
           "missing_image", body=b"")
    b.form("multipart_batch_one_broken", "a batch of three whose second image is junk",
           [one[0], ("image", "b.png", "image/png", b"junk" * 10), ("image", "c.png", "image/png", png)],
           400, "invalid_image")
    b.form("multipart_too_many_images", f"{too_many} images, one over the per-request limit",
           [("image", f"{i}.png", "image/png", png) for i in range(too_many)],
           413, "payload_too_large")
    # fmt: on


def _http_cases(b: CorpusBuilder) -> None:
    png = encode(scene(64, 48, seed=6), "PNG")
    limit = b.target.max_upload_bytes
    oversize = png + bytes(limit + limit // 2 - len(png))
    noise = np.random.default_rng(9).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    large = encode(Image.fromarray(noise, "RGB"), "PNG", compress_level=0)
    assert len(large) < limit, "the large-but-allowed upload must fit the limit"
    image_png = [("Content-Type", "image/png")]
    # fmt: off
    raw: list[tuple[str, str, bytes, str | None, int, str | None]] = [
        ("large_upload_ok", f"a {len(large)}-byte PNG, under the limit", large, "image/png", 200, None),
        ("empty_body", "an empty body labelled image/png", b"", "image/png", 400, "missing_image"),
        ("no_content_type", "a PNG body without a Content-Type", png, None, 415, "unsupported_media_type"),
        ("text_plain_type", "a PNG body labelled text/plain", png, "text/plain", 415, "unsupported_media_type"),
        ("json_type", "a PNG body labelled application/json", png, "application/json", 415, "unsupported_media_type"),
        ("form_urlencoded", "a PNG body labelled application/x-www-form-urlencoded", png,
         "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ]
    for id, description, body, content_type, status, code in raw:
        b.raw(id, description, body, content_type, status, code, category="http")
    framed: list[tuple[str, str, list[tuple[str, str]], bytes, int, str | None, Transfer]] = [
        ("oversize_content_length", "a body over the upload limit, Content-Length declared",
         image_png, oversize, 413, "payload_too_large", "partial"),
        ("oversize_chunked", "a body over the upload limit, chunked (no Content-Length)",
         image_png, oversize, 413, "payload_too_large", "chunked"),
        ("oversize_multipart", "a multipart body over the upload limit", [("Content-Type", MULTIPART)],
         multipart([("image", "big.png", "image/png", oversize)]), 413, "payload_too_large", "partial"),
        ("chunked_ok", "a small PNG sent chunked", image_png, png, 200, None, "chunked"),
        ("slow_body", "slow-loris: the body trickles in a byte at a time",
         image_png, png, 408, "request_timeout", "slow"),
        ("slow_headers", "slow-loris: the headers trickle in a byte at a time",
         image_png, png, 408, "request_timeout", "slow_head"),
        ("oversize_header", "a 64 KiB request header", [*image_png, ("X-Padding", "a" * 65536)],
         png, 431, "headers_too_large", "length"),
        ("many_headers", "2000 request headers", [*image_png, *((f"X-H{i}", "v") for i in range(2000))],
         png, 431, "headers_too_large", "length"),
    ]
    # fmt: on
    for id, description, headers, body, status, code, transfer in framed:
        b.add(Case(id, "http", description, "POST", b.predict, headers, body, status, code,
                   transfer=transfer))  # fmt: skip


def _parameter_and_path_cases(b: CorpusBuilder) -> None:
    png = encode(scene(64, 48, seed=6), "PNG")
    model = b.target.model
    predict, versions = b.predict, f"/v1/models/{model}/versions"

    def send(id: str, description: str, target: str, status: int, code: str | None,
             method: str = "POST", category: str = "path", protocol: Protocol = "v1") -> None:  # fmt: skip
        headers = [("Content-Type", "image/png")] if method == "POST" else []
        body = png if method == "POST" else b""
        b.add(Case(id, category, description, method, target, headers, body, status, code,
                   protocol=protocol))  # fmt: skip

    # fmt: off
    parameters = [
        ("top_k_1", "top_k=1", "1", 200, None),
        ("top_k_huge", "top_k=1000000: clamped to the labels", "1000000", 200, None),
        ("top_k_overflow", "top_k=10**30: clamped", str(10**30), 200, None),
        ("top_k_negative", "top_k=-1", "-1", 422, "invalid_parameter"),
        ("top_k_zero", "top_k=0", "0", 422, "invalid_parameter"),
        ("top_k_text", "top_k=abc", "abc", 422, "invalid_parameter"),
        ("top_k_float", "top_k=1.5", "1.5", 422, "invalid_parameter"),
        ("top_k_empty", "top_k= (empty)", "", 422, "invalid_parameter"),
        ("top_k_nan", "top_k=NaN", "NaN", 422, "invalid_parameter"),
    ]
    paths: list[tuple[str, str, str, int, str | None]] = [
        ("model_unknown", "an unknown model", "/v1/models/nosuchmodel/predict", 404, "model_not_found"),
        ("model_dotdot", "model name '..' (raw)", "/v1/models/../predict", 404, "model_not_found"),
        ("model_dotdot_encoded", "model name %2e%2e", "/v1/models/%2e%2e/predict", 404, "model_not_found"),
        ("model_traversal_encoded_slash", "model name ..%2f..%2fetc%2fpasswd",
         "/v1/models/..%2f..%2fetc%2fpasswd/predict", 404, "not_found"),
        ("model_traversal_raw", "raw ../../etc/passwd in the path",
         "/v1/models/../../etc/passwd/predict", 404, "not_found"),
        ("model_nul", "model name with an encoded NUL", f"/v1/models/{model}%00/predict", 404, "model_not_found"),
        ("model_nul_dotdot", "model name ..%00", "/v1/models/..%00/predict", 404, "model_not_found"),
        ("model_non_utf8_encoded", "model name %ff%fe (not UTF-8)", "/v1/models/%ff%fe/predict", 404, "model_not_found"),
        ("model_non_utf8_raw", "raw bytes 0xff 0xfe in the path", "/v1/models/\xff\xfe/predict", 400, "invalid_request"),
        ("model_absolute", "model name %2fetc", "/v1/models/%2fetc/predict", 404, "not_found"),
        ("model_backslash", "model name ..\\..\\windows", "/v1/models/..%5c..%5cwindows/predict", 404, "model_not_found"),
        ("model_long", "a 4000-character model name", "/v1/models/" + "m" * 4000 + "/predict", 404, "model_not_found"),
        ("version_unknown", "an unknown version", f"{versions}/999/predict", 404, "version_not_found"),
        ("version_dotdot", "version '..'", f"{versions}/%2e%2e/predict", 422, "invalid_parameter"),
        ("version_text", "version 'latest' (not a number)", f"{versions}/latest/predict", 422, "invalid_parameter"),
        ("version_traversal", "version ..%2f..%2f1", f"{versions}/..%2f..%2f1/predict", 404, "not_found"),
    ]
    # Reload reads the models folder: names from the URL must never reach outside it.
    reloads: list[tuple[str, str, int, str | None]] = [
        ("reload_dotdot", "..", 404, "model_not_found"),
        ("reload_dotdot_encoded", "%2e%2e", 404, "model_not_found"),
        ("reload_traversal", "..%2f..%2fetc", 404, "not_found"),
        ("reload_nul", f"{model}%00", 404, "model_not_found"),
        ("reload_non_utf8", "%ff%fe", 404, "model_not_found"),
        ("reload_unknown", "nosuchmodel", 404, "model_not_found"),
        ("reload_ok", model, 200, None),
    ]
    # fmt: on
    for id, description, value, status, code in parameters:
        send(id, description, f"{predict}?top_k={value}", status, code, category="params")
    for id, description, target, status, code in paths:
        send(id, description, target, status, code)
    send("info_dotdot", "GET /v1/models/%2e%2e", "/v1/models/%2e%2e", 404, "model_not_found", "GET")
    send("info_nul", "GET /v1/models/%00", "/v1/models/%00", 404, "model_not_found", "GET")
    send("predict_get", "GET on a predict route", predict, 405, "method_not_allowed", "GET")
    send("predict_put", "PUT on a predict route", predict, 405, "method_not_allowed", "PUT")
    send("no_route", "an unknown route", "/v1/nothing/here", 404, "not_found")
    send("v2_model_dotdot", "V2 infer on model %2e%2e", "/v2/models/%2e%2e/infer", 404, None,
         protocol="v2")  # fmt: skip
    for id, name, status, code in reloads:
        send(id, f"reload model {name!r}", f"/v1/models/{name}/reload", status, code)


def _v2_cases(b: CorpusBuilder) -> None:
    c, h, w = b.target.input_shape
    size = c * h * w
    tensor = np.random.default_rng(0).normal(size=(1, c, h, w)).astype("<f4")
    values = tensor.ravel().tolist()

    def tensor_input(shape: list[int], datatype: str = "FP32", **extra: object) -> dict[str, Any]:
        return {"name": b.target.input_name, "shape": shape, "datatype": datatype, **extra}

    def request(*inputs: dict[str, Any]) -> dict[str, Any]:
        return {"inputs": list(inputs)}

    def sized(nbytes: object, shape: list[int] | None = None) -> dict[str, Any]:
        return request(tensor_input(shape or [1, c, h, w], parameters={"binary_data_size": nbytes}))

    nan, inf = tensor.copy(), tensor.copy()
    nan[0, 0, 0, 0], inf[0, 1, 2, 3] = np.nan, np.inf
    text = json.dumps(request(tensor_input([1, c, h, w], data=[0.5] * size)))
    junk_image = base64.b64encode(b"junk" * 8).decode()
    # fmt: off
    b.v2("v2_json_ok", "V2 JSON tensor input", request(tensor_input([1, c, h, w], data=values)), 200)
    b.v2("v2_binary_ok", "V2 binary tensor input", sized(tensor.nbytes), 200, binary=tensor.tobytes())
    b.v2("v2_shape_mismatch", "V2 tensor of shape [1, C, H+1, W]",
         sized(c * (h + 1) * w * 4, [1, c, h + 1, w]), 400, binary=bytes(c * (h + 1) * w * 4))
    b.v2("v2_shape_vs_data", "V2 JSON data shorter than its shape",
         request(tensor_input([1, c, h, w], data=[0.0] * 10)), 400)
    b.v2("v2_rank_mismatch", "V2 tensor of rank 2", request(tensor_input([1, size], data=values)), 400)
    b.v2("v2_datatype_mismatch", "V2 INT32 where FP32 is expected",
         request(tensor_input([1, c, h, w], "INT32", data=[0] * size)), 400)
    b.v2("v2_datatype_unknown", "V2 datatype FP128",
         request(tensor_input([1, c, h, w], "FP128", data=[0] * size)), 400)
    b.v2("v2_binary_size_larger", "binary_data_size larger than the bytes sent",
         sized(tensor.nbytes + 400), 400, binary=tensor.tobytes())
    b.v2("v2_binary_size_smaller", "binary_data_size smaller than the bytes sent",
         sized(tensor.nbytes - 400), 400, binary=tensor.tobytes())
    b.v2("v2_binary_size_negative", "negative binary_data_size", sized(-4), 400, binary=tensor.tobytes())
    b.v2("v2_binary_size_text", "binary_data_size as a string", sized("lots"), 400, binary=tensor.tobytes())
    b.v2("v2_shape_negative", "a negative dimension in the shape",
         request(tensor_input([-1, c, h, w], data=values)), 400)
    b.v2("v2_shape_huge", "a shape of 2^62 elements with a small body",
         sized(tensor.nbytes, [2**31, c, h, w]), 400, binary=tensor.tobytes())
    b.v2("v2_header_length_too_big", "Inference-Header-Content-Length past the end of the body",
         sized(tensor.nbytes), 400, binary=tensor.tobytes(),
         headers=[("Inference-Header-Content-Length", "99999999")])
    b.v2("v2_header_length_negative", "Inference-Header-Content-Length: -5",
         sized(tensor.nbytes), 400, binary=tensor.tobytes(),
         headers=[("Inference-Header-Content-Length", "-5")])
    b.v2("v2_nan_binary", "a NaN in binary FP32 data", sized(nan.nbytes), 400, binary=nan.tobytes())
    b.v2("v2_inf_binary", "an Inf in binary FP32 data", sized(inf.nbytes), 400, binary=inf.tobytes())
    b.v2("v2_nan_json", "a NaN literal in JSON data", None, 400, raw_json=text.replace("0.5", "NaN", 1).encode())
    b.v2("v2_inf_json", "an Infinity literal in JSON data", None, 400,
         raw_json=text.replace("0.5", "Infinity", 1).encode())
    b.v2("v2_overflow_json", "1e999 (overflows FP32) in JSON data", None, 400,
         raw_json=text.replace("0.5", "1e999", 1).encode())
    b.v2("v2_invalid_json", "a body that is not JSON", None, 400, raw_json=b'{"inputs": [')
    b.v2("v2_not_object", "a JSON array instead of an object", [1, 2, 3], 400)
    b.v2("v2_no_inputs", "no 'inputs' member", {"outputs": []}, 400)
    b.v2("v2_wrong_input_name", "an input name the model does not have",
         request({"name": "nope", "shape": [1, c, h, w], "datatype": "FP32", "data": values}), 400)
    scan = base64.b64encode(ct_bytes()).decode()
    frames = base64.b64encode(multi_frame(3)).decode()
    b.v2("v2_bytes_dicom", "a DICOM file as a BYTES image input",
         request({"name": "encoded_image", "shape": [1], "datatype": "BYTES", "data": [scan]}), 200)
    # V2 answers every refused request 400 (routes.py), multiple_frames included.
    b.v2("v2_bytes_dicom_frames", "a 3-frame DICOM file as BYTES, no frame chosen",
         request({"name": "encoded_image", "shape": [1], "datatype": "BYTES", "data": [frames]}), 400)
    b.v2("v2_bytes_dicom_frame_2", "a 3-frame DICOM file as BYTES with parameters.frame 2",
         request({"name": "encoded_image", "shape": [1], "datatype": "BYTES", "data": [frames],
                  "parameters": {"frame": 2}}), 200)
    b.v2("v2_bytes_frame_negative", "parameters.frame -1",
         request({"name": "encoded_image", "shape": [1], "datatype": "BYTES", "data": [frames],
                  "parameters": {"frame": -1}}), 400)
    b.v2("v2_bytes_image_broken", "a BYTES image input holding junk",
         request({"name": "encoded_image", "shape": [1], "datatype": "BYTES", "data": [junk_image]}), 400)
    b.v2("v2_unknown_model", "V2 infer on an unknown model",
         request(tensor_input([1, c, h, w], data=values)), 404, target="/v2/models/nosuchmodel/infer")
    oversize = json.dumps(request(tensor_input([1, c, h, w], data=values))).encode()
    oversize += b" " * (b.target.max_upload_bytes + 1024 - len(oversize))
    oversized: list[tuple[str, Transfer]] = [("v2_oversize_content_length", "partial"), ("v2_oversize_chunked", "chunked")]
    for id, transfer in oversized:
        b.add(Case(id, "v2", f"a V2 body over the upload limit ({transfer})", "POST", b.infer,
                   [("Content-Type", "application/json")], oversize, 413, None, protocol="v2",
                   transfer=transfer))  # fmt: skip
    b.v2("v2_gzip_bomb", "a gzip body that inflates past the upload limit", None, 413,
         raw_json=gzip.compress(b" " * (b.target.max_upload_bytes * 4)),
         headers=[("Content-Encoding", "gzip")])
    # fmt: on


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
