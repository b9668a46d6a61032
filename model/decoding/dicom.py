"""Decode DICOM Part 10 files with pydicom (and the pylibjpeg / pyjpegls plugins).

Stored values -> modality LUT (Rescale Slope/Intercept or a Modality LUT Sequence) -> VOI
(the card's fixed window, else the file's VOI LUT, else its first Window Center/Width,
else the image's own range) -> 0..255 display values, MONOCHROME1 inverted, Pixel Padding
Value masked to black. Grayscale stays float (a mode ``F`` image), so 12- and 16-bit data
keep their precision through resizing; colour (RGB, YBR_* converted by pydicom, PALETTE
COLOR) becomes 8-bit RGB. The header is checked (size, bits, frames, transfer syntax)
before any pixel is decoded.

No value read from the file reaches a message: a DICOM file carries patient identifiers,
so errors name tags and standard terms only (docs/medical-imaging.md).
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
    get_decoder,
    pixel_array,
)
from pydicom.uid import UID, AllTransferSyntaxes

from model.card import DicomPolicy, Preprocessing, Window
from model.decoding.errors import DecodeError
from model.decoding.frames import choose_frame
from model.decoding.limits import check_size

# pydicom's value validation would warn (and log) with the offending value: a name, a date.
# Its other warnings about damaged files go nowhere either: the error we raise names the
# problem, and nothing a file says reaches a log.
pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
logging.getLogger("pydicom").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")

MAX_BITS_STORED = 16
GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")
_KNOWN_PHOTOMETRIC = frozenset(
    (*GRAYSCALE, *COLOUR, "HSV", "ARGB", "CMYK", "YBR_PARTIAL_422", "YBR_PARTIAL_420", "XYB")
)
_TAG = re.compile(r"\(([0-9A-Fa-f]{4}),\s*([0-9A-Fa-f]{4})\)")


def decode_dicom(data: bytes, spec: Preprocessing, max_pixels: int) -> Image.Image:
    """DICOM bytes -> a mode ``F`` (grayscale, 0..255) or ``RGB`` image, or ``DecodeError``."""
    ds = _parse(data)
    try:
        return _decode(ds, spec, max_pixels)
    except DecodeError:
        raise
    except Exception as exc:  # a value pydicom cannot convert, read lazily: name the tag only
        raise DecodeError(
            "invalid_image", f"the DICOM data set is malformed{_where(exc)}", {"format": "DICOM"}
        ) from exc


def _parse(data: bytes) -> Dataset:
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        for _ in ds.iterall():  # elements convert lazily: a bad VR or length fails here
            pass
    except InvalidDicomError as exc:
        raise DecodeError(
            "invalid_image", "not a DICOM file: no 'DICM' marker", {"format": None}
        ) from exc
    except (EOFError, OSError) as exc:
        raise DecodeError(
            "invalid_image", "the DICOM file is truncated", {"format": "DICOM"}
        ) from exc
    except Exception as exc:  # bad VRs and lengths raise NotImplementedError, ValueError...
        raise DecodeError(
            "invalid_image", f"the DICOM data set is malformed{_where(exc)}", {"format": "DICOM"}
        ) from exc
    return ds


def _where(exc: Exception) -> str:
    """' at tag (gggg,eeee)' when the exception names one: tags are never identifiers."""
    match = _TAG.search(str(exc))
    kind = " (unknown Value Representation)" if "Value Representation" in str(exc) else ""
    return f" at tag ({match.group(1)},{match.group(2)}){kind}" if match else kind


def _decode(ds: Dataset, spec: Preprocessing, max_pixels: int) -> Image.Image:
    if "PixelData" not in ds:
        other = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
        raise DecodeError(
            "invalid_image",
            "the DICOM file has float pixel data, which is not supported"
            if other
            else "the DICOM file has no Pixel Data (7FE0,0010)",
            {"format": "DICOM"},
        )
    syntax = _transfer_syntax(ds)
    photometric = _photometric(ds)
    rows, columns = _required_int(ds, "Rows"), _required_int(ds, "Columns")
    bits_stored = _required_int(ds, "BitsStored")
    if bits_stored > MAX_BITS_STORED or bits_stored < 1:
        raise DecodeError(
            "invalid_image",
            f"the DICOM image stores {bits_stored} bits per sample; 1 to {MAX_BITS_STORED} "
            "are supported",
            {"format": "DICOM", "bits_stored": bits_stored},
        )
    check_size("DICOM", columns, rows, spec, max_pixels)
    frames = int(ds.get("NumberOfFrames") or 1)
    index = choose_frame("DICOM", frames, spec.frame)
    pixels = _pixels(ds, syntax, index if frames > 1 else None)
    if photometric in GRAYSCALE:
        if pixels.ndim != 2:
            raise DecodeError(
                "invalid_image",
                f"the {photometric} DICOM image has {ds.get('SamplesPerPixel')} samples per "
                "pixel; grayscale needs 1",
                {"format": "DICOM"},
            )
        display = grayscale_display(pixels, ds, spec.dicom)
        return Image.fromarray(display, mode="F")
    return Image.fromarray(_colour(pixels, ds, photometric), mode="RGB")


def _transfer_syntax(ds: Dataset) -> UID:
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if not syntax:
        raise DecodeError(
            "invalid_image",
            "the DICOM file meta has no Transfer Syntax UID (0002,0010)",
            {"format": "DICOM"},
        )
    syntax = UID(str(syntax))
    # A standard transfer syntax's name is a constant of the standard, safe to echo; any
    # other value is not echoed (it could be anything).
    name = syntax.name if syntax.is_transfer_syntax else "an unknown transfer syntax"
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        decoder = None
    if decoder is None or not decoder.is_available:
        raise DecodeError(
            "unsupported_media_type",
            f"the DICOM transfer syntax {name} cannot be decoded here; supported: "
            f"{', '.join(supported_transfer_syntaxes())}",
            {"format": "DICOM", "transfer_syntax": name},
        )
    return syntax


def supported_transfer_syntaxes() -> list[str]:
    """Names of the transfer syntaxes the installed pydicom plugins decode."""
    names = []
    for uid in AllTransferSyntaxes:
        try:
            if get_decoder(uid).is_available:
                names.append(UID(uid).name)
        except NotImplementedError:
            continue
    return names


def _photometric(ds: Dataset) -> str:
    value = str(ds.get("PhotometricInterpretation") or "").strip()
    if value in GRAYSCALE or value in COLOUR:
        return value
    shown = value if value in _KNOWN_PHOTOMETRIC else "an unrecognised value"
    raise DecodeError(
        "invalid_image",
        f"the DICOM Photometric Interpretation is {shown}; supported: "
        f"{', '.join(GRAYSCALE + COLOUR)}",
        {"format": "DICOM"},
    )


def _required_int(ds: Dataset, keyword: str) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        raise DecodeError(
            "invalid_image", f"the DICOM image has no {keyword} element", {"format": "DICOM"}
        )
    return int(value)


def _pixels(ds: Dataset, syntax: UID, index: int | None) -> np.ndarray:
    try:
        return pixel_array(ds, index=index)
    except (KeyboardInterrupt, SystemExit):
        raise
    # Short or corrupt pixel data, a codec failing on its stream. A Rust codec's panic
    # (pylibjpeg-rle on a damaged segment) is a pyo3 PanicException, a BaseException.
    except BaseException as exc:
        raise DecodeError(
            "invalid_image",
            f"the DICOM pixel data ({syntax.name}) is truncated or corrupt",
            {"format": "DICOM"},
        ) from exc


def grayscale_display(pixels: np.ndarray, ds: Dataset, policy: DicomPolicy) -> np.ndarray:
    """Stored grayscale values -> float32 display values in 0..255 (see the module doc)."""
    padding = _padding_mask(pixels, ds)
    values = apply_modality_lut(pixels, ds)
    if policy.window is not None:
        display = _window(values, ds, policy.window)
    elif _has_voi_lut(ds):
        display = _voi_lut(values, ds)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        display = _window(values, ds, None)
    else:
        display = _own_range(values, padding)
    if ds.PhotometricInterpretation == "MONOCHROME1":  # 0 is white
        display = 255.0 - display
    if padding is not None:
        display[padding] = 0.0
    return display.astype(np.float32)


def _padding_mask(pixels: np.ndarray, ds: Dataset) -> np.ndarray | None:
    value = ds.get("PixelPaddingValue")
    if value is None:
        return None
    limit = ds.get("PixelPaddingRangeLimit", value)
    low, high = sorted((int(value), int(limit)))
    mask = (pixels >= low) & (pixels <= high)
    return mask if mask.any() else None


def _window(values: np.ndarray, ds: Dataset, fixed: Window | None) -> np.ndarray:
    """DICOM linear windowing (pydicom's), scaled from its output range to 0..255."""
    if fixed is not None:  # the card's window replaces the file's VOI module
        ds = _with_window(ds, fixed)
    if float(_first(ds.WindowWidth)) < 1 and str(ds.get("VOILUTFunction", "LINEAR")) == "LINEAR":
        raise DecodeError(
            "invalid_image",
            "the DICOM Window Width (0028,1051) is below 1, which linear windowing forbids",
            {"format": "DICOM"},
        )
    windowed = apply_windowing(np.asarray(values, dtype=np.float64), ds)
    # The output range: pydicom maps everything below the window to its minimum and
    # everything above to its maximum, so window the two extremes.
    with np.errstate(over="ignore"):
        low, high = apply_windowing(np.array([-1e300, 1e300]), ds)
    return _scale(windowed, float(low), float(high))


def _with_window(ds: Dataset, window: Window) -> Dataset:
    copy = Dataset()
    for keyword in ("PhotometricInterpretation", "BitsStored", "PixelRepresentation"):
        setattr(copy, keyword, ds.get(keyword))
    for keyword in ("RescaleSlope", "RescaleIntercept", "ModalityLUTSequence"):
        if keyword in ds:
            setattr(copy, keyword, ds.get(keyword))
    copy.WindowCenter = window.center
    copy.WindowWidth = window.width
    return copy


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, pydicom.multival.MultiValue) else value


def _has_voi_lut(ds: Dataset) -> bool:
    items = ds.get("VOILUTSequence")
    return bool(items) and None not in (items[0].get("LUTDescriptor"), items[0].get("LUTData"))


def _voi_lut(values: np.ndarray, ds: Dataset) -> np.ndarray:
    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
    mapped = apply_voi(np.rint(values).astype(np.int64), ds)
    return _scale(mapped.astype(np.float64), 0.0, float(2**bits - 1))


def _own_range(values: np.ndarray, padding: np.ndarray | None) -> np.ndarray:
    """No window anywhere: the image's own minimum..maximum (padding left out)."""
    values = np.asarray(values, dtype=np.float64)
    real = values if padding is None else values[~padding]
    if real.size == 0:
        return np.zeros(values.shape)
    return _scale(values, float(real.min()), float(real.max()))


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape)
    return np.clip((values - low) * (255.0 / (high - low)), 0.0, 255.0)


def _colour(pixels: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """RGB (pydicom already converted YBR) or PALETTE COLOR -> 8-bit RGB."""
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
        bits = 8 * pixels.dtype.itemsize
    else:
        bits = int(ds.BitsStored)
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise DecodeError(
            "invalid_image",
            f"the {photometric} DICOM image has {ds.get('SamplesPerPixel')} samples per "
            "pixel; colour needs 3",
            {"format": "DICOM"},
        )
    if bits == 8:
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    scaled = np.rint(pixels.astype(np.float64) * (255.0 / (2**bits - 1)))
    return np.clip(scaled, 0, 255).astype(np.uint8)
