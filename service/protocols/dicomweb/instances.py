"""Which instances of a study are classified, and why the others are not.

``screen`` reads an instance's header attributes only (WADO-RS metadata, or the header of
a STOW-RS part), so an instance that cannot be classified is skipped before its pixels are
fetched or decoded: no Pixel Data, a Structured Report, a waveform, several frames with
none chosen, a frame past the end, more pixels than ``max_image_pixels``. A frame chosen by
the request applies to the multi-frame instances; single-frame ones are classified as
they are. The reasons name
this adapter's own option (``?frame=``) and carry no attribute of the file beyond counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from model.card import ModelCard

SR_CLASSES = "1.2.840.10008.5.1.4.1.1.88."  # every Structured Report storage class
WAVEFORM_CLASSES = "1.2.840.10008.5.1.4.1.1.9."  # ECG, audio, hemodynamic, ... waveforms
NON_IMAGE_MODALITIES = frozenset({"SR", "KO", "PR", "DOC", "ECG", "AU", "REG", "SEG", "RWV"})
PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True)
class InstanceRef:
    """Where an instance is and what it is: UIDs and header counts, no patient data."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    frames: int

    def as_json(self) -> dict[str, str]:
        return {"sop_instance_uid": self.sop_uid, "series_uid": self.series_uid}


@dataclass(frozen=True)
class Skipped:
    instance: InstanceRef
    reason: str  # an error code of the API, or a skip reason of this adapter
    message: str

    def as_json(self) -> dict[str, Any]:
        return {**self.instance.as_json(), "reason": self.reason, "message": self.message}


def instance_ref(dataset: Dataset) -> InstanceRef:
    frames = dataset.get("NumberOfFrames", 1)
    try:
        count = int(frames) if frames not in (None, "") else 1
    except (TypeError, ValueError):
        count = 1
    return InstanceRef(
        study_uid=str(dataset.get("StudyInstanceUID", "")),
        series_uid=str(dataset.get("SeriesInstanceUID", "")),
        sop_uid=str(dataset.get("SOPInstanceUID", "")),
        sop_class_uid=str(dataset.get("SOPClassUID", "")),
        frames=max(1, count),
    )


def screen(
    dataset: Dataset, card: ModelCard, frame: int | None, max_pixels: int
) -> InstanceRef | Skipped:
    """The instance to classify, or why it is skipped; ``frame``: the request's choice."""
    ref = instance_ref(dataset)
    modality = str(dataset.get("Modality", "")).upper()
    if ref.sop_class_uid.startswith(SR_CLASSES) or modality == "SR":
        return Skipped(ref, "structured_report", "a Structured Report holds no image")
    if ref.sop_class_uid.startswith(WAVEFORM_CLASSES) or "WaveformSequence" in dataset:
        return Skipped(ref, "waveform", "a waveform holds no image")
    if not any(keyword in dataset for keyword in PIXEL_DATA_KEYWORDS):
        what = modality if modality in NON_IMAGE_MODALITIES else "the instance"
        return Skipped(ref, "no_pixel_data", f"{what} has no Pixel Data (7FE0,0010)")
    chosen = frame if frame is not None else card.preprocessing.frame
    if ref.frames > 1 and chosen is None:
        return Skipped(
            ref,
            "multiple_frames",
            f"the instance has {ref.frames} frames and this model classifies one image: "
            "choose one with ?frame=N on this request (from 0), or export the model with a "
            "frame in its card (preprocessing.frame)",
        )
    if ref.frames > 1 and chosen is not None and chosen >= ref.frames:
        return Skipped(
            ref,
            "invalid_image",
            f"frame {chosen} was asked for, but the instance has {ref.frames} "
            f"frame{'s' if ref.frames > 1 else ''} (0 to {ref.frames - 1})",
        )
    pixels = int(dataset.get("Rows", 0) or 0) * int(dataset.get("Columns", 0) or 0)
    if pixels > max_pixels:
        return Skipped(
            ref,
            "image_too_large",
            f"the instance's frames are {pixels} pixels; the limit is {max_pixels}",
        )
    return ref
