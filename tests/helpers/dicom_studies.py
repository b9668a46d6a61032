"""Test studies as a modality writes them: CT and MR series, multi-frame images and non-image
objects (an SR, a waveform, an instance without Pixel Data), every file carrying the same
distinctive patient identifiers, and a reader for the reports Rectifier stores."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.helpers.dicom import PHI, ct_bytes, ct_slice, dicom_bytes

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
TWELVE_LEAD_ECG = "1.2.840.10008.5.1.4.1.1.9.1.1"
# What identifies the patient (UIDs are not PHI here): none may reach a log, metric or body.
IDENTIFYING = (
    PHI["PatientName"],
    PHI["PatientID"],
    PHI["PatientBirthDate"],
    PHI["StudyDate"],
    PHI["AccessionNumber"],
    PHI["InstitutionName"],
    "Quixote",
    "Alonso",
    "La Mancha",
)


@dataclass(frozen=True)
class Instance:
    study_uid: str
    series_uid: str
    sop_uid: str
    data: bytes
    image: bool = True


def _relabel(
    data: bytes, study_uid: str, series_uid: str, number: int, **attributes: Any
) -> Instance:
    ds = pydicom.dcmread(io.BytesIO(data))
    sop_uid = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.InstanceNumber = number
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if "SOPClassUID" in attributes:
        ds.file_meta.MediaStorageSOPClassUID = attributes["SOPClassUID"]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return Instance(study_uid, series_uid, sop_uid, buffer.getvalue())


def series(
    study_uid: str, count: int, *, modality: str = "CT", size: int = 64, seed: int = 0
) -> list[Instance]:
    """``count`` single-frame images of one new series (CT, or MR with its SOP class)."""
    series_uid = generate_uid()
    extra: dict[str, Any] = {"Modality": modality, "SeriesNumber": 1 + seed % 50}
    if modality == "MR":
        extra["SOPClassUID"] = MR
    return [
        _relabel(
            ct_bytes(size=size, RescaleIntercept=-1024 + 7 * (seed + i)),
            study_uid,
            series_uid,
            i + 1,
            **extra,
        )
        for i in range(count)
    ]


def multi_frame_instance(study_uid: str, frames: int = 3) -> Instance:
    stack = np.stack([np.roll(ct_slice(64), 5 * k, axis=1) for k in range(frames)])
    data = dicom_bytes(
        stack, bits_stored=12, RescaleIntercept=-1024, RescaleSlope=1, WindowCenter=40,
        WindowWidth=400,
    )  # fmt: skip
    return _relabel(data, study_uid, generate_uid(), 1)


def _non_image(study_uid: str, sop_class: str, modality: str, **attributes: Any) -> Instance:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    sop_uid, series_uid = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return Instance(study_uid, series_uid, sop_uid, buffer.getvalue(), image=False)


def structured_report(study_uid: str) -> Instance:
    return _non_image(study_uid, BASIC_TEXT_SR, "SR", ValueType="CONTAINER")


def waveform(study_uid: str) -> Instance:
    channel = Dataset()
    channel.NumberOfWaveformChannels = 1
    channel.NumberOfWaveformSamples = 4
    channel.SamplingFrequency = 500
    channel.WaveformBitsAllocated = 16
    channel.WaveformSampleInterpretation = "SS"
    channel.WaveformData = np.arange(4, dtype=np.int16).tobytes()
    return _non_image(study_uid, TWELVE_LEAD_ECG, "ECG", WaveformSequence=[channel])


def without_pixels(study_uid: str) -> Instance:
    return _non_image(study_uid, CT, "CT", Rows=64, Columns=64)


def stow_body(parts: list[bytes], boundary: str = "rectifier-test-boundary") -> tuple[bytes, str]:
    chunks = []
    for part in parts:
        chunks.append(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return b"".join(chunks), content_type


# ------------------------------------------------------------------ reading a report back
def _items(dataset: Dataset) -> Iterator[Dataset]:
    for item in getattr(dataset, "ContentSequence", []):
        yield item
        yield from _items(item)


def report_findings(report: Dataset) -> dict[str, list[tuple[str, float]]]:
    """SOP Instance UID -> [(label, probability), ...] in the report's order (top first)."""
    found: dict[str, list[tuple[str, float]]] = {}
    for group in _items(report):
        concept = getattr(group, "ConceptNameCodeSequence", [None])[0]
        if concept is None or concept.CodeValue != "125007":  # Measurement Group
            continue
        source, scores = None, []
        for item in group.ContentSequence:
            name = item.ConceptNameCodeSequence[0]
            if item.ValueType == "IMAGE":
                source = str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
            elif item.ValueType == "NUM" and name.CodingSchemeDesignator == "99RCTFR":
                value = item.MeasuredValueSequence[0]
                number = getattr(value, "FloatingPointValue", None)
                label = str(name.CodeMeaning).removeprefix("Probability of ")
                scores.append((label, float(number if number is not None else value.NumericValue)))
        assert source is not None, "a measurement group without its source image"
        found[source] = scores
    return found


def report_parameters(report: Dataset) -> dict[str, str]:
    """The algorithm's name, version and parameters recorded in the report."""
    names = {"111001": "name", "111003": "version", "111002": "parameters"}
    values: dict[str, str] = {}
    for item in _items(report):
        concept = getattr(item, "ConceptNameCodeSequence", [None])[0]
        if concept is not None and concept.CodeValue in names and item.ValueType == "TEXT":
            values[names[concept.CodeValue]] = str(item.TextValue)
    return values
