"""DICOM test files written with pydicom, the way a modality writes them: with patient
identifiers set (so tests can prove none leaks), uncompressed or compressed by the
installed encoder plugins (RLE Lossless natively, JPEG-LS via pyjpegls, JPEG 2000 via
pylibjpeg-openjpeg)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
)

# Identifying values every test file carries; none may appear in a response, log or error.
PHI: dict[str, str] = {
    "PatientName": "Quixote^Alonso^Q",
    "PatientID": "MRN-7731-0042",
    "PatientBirthDate": "19470315",
    "StudyDate": "20240229",
    "AccessionNumber": "ACC99871234",
    "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1111111111",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.2222222222",
    "SOPInstanceUID": "1.2.826.0.1.3680043.8.498.3333333333",
    "InstitutionName": "Hospital de La Mancha",
}
PHI_STRINGS = (*PHI.values(), "Quixote", "Alonso", "La Mancha")

COMPRESSED = {"rle": RLELossless, "jpegls": JPEGLSLossless, "j2k": JPEG2000Lossless}
SYNTAXES = {"uncompressed": ExplicitVRLittleEndian, **COMPRESSED}


def dicom_bytes(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    syntax: UID = ExplicitVRLittleEndian,
    bits_stored: int | None = None,
    modality: str = "CT",
    **attributes: Any,
) -> bytes:
    """A DICOM Part 10 file holding ``pixels`` (rows, cols[, 3]) or (frames, rows, cols[, 3])."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    sop_class = CTImageStorage if modality == "CT" else SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = PHI["SOPInstanceUID"]
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    bits = bits_stored or pixels.dtype.itemsize * 8
    ds.set_pixel_data(pixels, photometric, bits)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct_slice(size: int = 64, seed: int = 0) -> np.ndarray:
    """Stored values of a CT slice (int16, rescale intercept -1024 gives HU): air outside a
    body of soft tissue with a bright bone ring and noise, over the 12-bit range."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    radius = np.hypot(x, y * 1.2)
    hu = np.where(radius < 0.42, 40.0, -1000.0)
    hu = np.where((radius > 0.33) & (radius < 0.38), 900.0, hu)
    hu += 120.0 * np.sin(9.0 * x) * (radius < 0.33)
    hu += rng.normal(0.0, 15.0, hu.shape)
    return np.clip(np.rint(hu + 1024.0), 0, 4095).astype(np.int16)


def ct_bytes(size: int = 64, syntax: UID = ExplicitVRLittleEndian, **attributes: Any) -> bytes:
    """A CT slice with Rescale Intercept -1024 and a soft-tissue window (40/400) in the file."""
    defaults: dict[str, Any] = {
        "RescaleIntercept": -1024,
        "RescaleSlope": 1,
        "RescaleType": "HU",
        "WindowCenter": 40,
        "WindowWidth": 400,
    }
    return dicom_bytes(ct_slice(size), syntax=syntax, bits_stored=12, **{**defaults, **attributes})


# ------------------------------------------------------------------ broken files (by hand)
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"


def without_pixel_data(data: bytes) -> bytes:
    """The file cut just before its Pixel Data element."""
    return data[: data.rindex(_PIXEL_DATA_TAG)]


def with_transfer_syntax(data: bytes, uid: str) -> bytes:
    """The file with another Transfer Syntax UID in its meta (lengths kept consistent)."""
    ds_meta_length_at = data.index(b"\x02\x00\x00\x00UL") + 8
    old_at = data.index(b"\x02\x00\x10\x00UI")
    old_length = int.from_bytes(data[old_at + 6 : old_at + 8], "little")
    value = uid.encode() + (b"\x00" if len(uid) % 2 else b"")
    element = data[old_at : old_at + 6] + len(value).to_bytes(2, "little") + value
    meta_length = int.from_bytes(data[ds_meta_length_at : ds_meta_length_at + 4], "little")
    meta_length += len(value) - old_length
    out = data[:old_at] + element + data[old_at + 8 + old_length :]
    return (
        out[:ds_meta_length_at] + meta_length.to_bytes(4, "little") + out[ds_meta_length_at + 4 :]
    )


def with_32_bits_stored(rows: int = 64, columns: int = 64) -> bytes:
    """A 32-bit grayscale file (pydicom will not write one from an array, so patch one)."""
    data = bytearray(dicom_bytes(np.zeros((rows, columns), np.uint16)))
    for tag in (b"\x28\x00\x00\x01US", b"\x28\x00\x01\x01US"):  # Bits Allocated, Stored
        at = data.index(tag) + 8
        data[at : at + 2] = (32).to_bytes(2, "little")
    pixels = data.rindex(_PIXEL_DATA_TAG)
    body = np.arange(rows * columns, dtype="<u4").tobytes()
    return bytes(data[: pixels + 8]) + len(body).to_bytes(4, "little") + body


def with_bad_vr(data: bytes) -> bytes:
    """Patient's Name (0010,0010) with the Value Representation 'ZZ', which does not exist."""
    at = data.index(b"\x10\x00\x10\x00PN")
    return data[: at + 4] + b"ZZ" + data[at + 6 :]


def huge_dimensions() -> bytes:
    """A small file whose header claims 60000x60000 pixels."""
    return dicom_bytes(ct_slice(), bits_stored=12, Rows=60000, Columns=60000)


def multi_frame(count: int = 3) -> bytes:
    frames = np.stack([ct_slice(seed=i) for i in range(count)])
    return dicom_bytes(
        frames,
        bits_stored=12,
        RescaleIntercept=-1024,
        RescaleSlope=1,
        WindowCenter=40,
        WindowWidth=400,
    )


def colour_picture() -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)


def with_bad_rle_segment_offset(data: bytes) -> bytes:
    """An RLE Lossless file whose second segment offset (in the fragment's 64-byte RLE
    header) points inside the first segment: pylibjpeg-rle's Rust decoder panics on it."""
    start = data.rindex(b"\xfe\xff\x00\xe0") + 8  # the last fragment's value
    return data[: start + 8] + (255).to_bytes(4, "little") + data[start + 12 :]
