"""The DICOM Structured Report of one request's classifications (highdicom).

A Comprehensive SR holding a TID 1500 Measurement Report in the source study (its patient
and study modules copied from the source instances, as a report of the study must), in a
series of its own whose Manufacturer is ``Rectifier``. One measurement group per classified
instance references that instance (and its frame) and holds:

- the algorithm: the model's name, its version and ``card_digest=<sha256 of the card>``;
- a qualitative evaluation ``Finding`` = the top label;
- one measurement per label of ``/predict``'s ``top_k``, ``Probability of <label>`` (unit
  ``1``), coded in the private scheme ``99RCTFR`` whose code value is ``P<label index>``;
- ``ood_score`` / ``in_distribution`` when the card provides them (today's cards do not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from service.protocols.dicomweb.instances import InstanceRef

SCHEME = "99RCTFR"  # private coding scheme of Rectifier's concepts
MANUFACTURER = "Rectifier"  # the Lua auto-routing script recognises reports by it
SERIES_NUMBER = 9901
FINDING = hd.sr.CodedConcept("121071", "DCM", "Finding")
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
OOD_SCORE = hd.sr.CodedConcept("OOD", SCHEME, "Out-of-distribution score")
IN_DISTRIBUTION = hd.sr.CodedConcept("IND", SCHEME, "In distribution")
YES = hd.sr.CodedConcept("373066001", "SCT", "Yes")
NO = hd.sr.CodedConcept("373067005", "SCT", "No")
PROCEDURE = hd.sr.CodedConcept("363679005", "SCT", "Imaging")
_MEANING_LENGTH = 64  # Code Meaning is an LO


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: int
    card_digest: str


@dataclass(frozen=True)
class InstanceFinding:
    """One classified instance: ``top_k`` as ``/predict`` answers it."""

    instance: InstanceRef
    top_k: Sequence[dict[str, Any]]  # {"label", "index", "probability"}
    frame: int | None = None  # the frame classified (0-based), for multi-frame instances
    ood_score: float | None = None
    in_distribution: bool | None = None


def label_concept(index: int, label: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(f"L{index}", SCHEME, label[:_MEANING_LENGTH] or f"label {index}")


def probability_concept(index: int, label: str) -> hd.sr.CodedConcept:
    meaning = f"Probability of {label}"[:_MEANING_LENGTH]
    return hd.sr.CodedConcept(f"P{index}", SCHEME, meaning)


def build_report(
    evidence: Sequence[Dataset], findings: Sequence[InstanceFinding], model: ModelIdentity
) -> hd.sr.ComprehensiveSR:
    """The report; ``evidence``: the source instances' header data sets (no pixels needed),
    the first of which gives the patient and study modules."""
    algorithm = hd.sr.AlgorithmIdentification(
        name=model.name,
        version=str(model.version),
        parameters=[f"card_digest={model.card_digest}"],
    )
    groups = [_group(finding, algorithm) for finding in findings]
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=[model.name, str(model.version), model.card_digest]),
        name=MANUFACTURER,
        manufacturer_name=MANUFACTURER,
        model_name=f"{model.name} {model.version}"[:_MEANING_LENGTH],
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    content = hd.sr.MeasurementReport(
        observation_context=context, procedure_reported=PROCEDURE, imaging_measurements=groups
    )
    report = hd.sr.ComprehensiveSR(
        evidence=[_evidence(evidence[0], patient=True), *(_evidence(e) for e in evidence[1:])],
        content=content[0],
        series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
    )
    report.SeriesDescription = f"Rectifier {model.name} {model.version}"[:_MEANING_LENGTH]
    return report


# Type 2 attributes of the patient and study modules: highdicom copies them from the first
# source instance and needs each present (empty where the source leaves it out).
_PATIENT_STUDY_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


_REFERENCE = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


def _evidence(source: Dataset, *, patient: bool = False) -> Dataset:
    """What highdicom reads of a source instance: its UIDs and, for the first, the patient
    and study modules (a slim copy: highdicom deep-copies its evidence)."""
    slim = Dataset()
    for keyword in _REFERENCE + (_PATIENT_STUDY_TYPE2 if patient else ()):
        setattr(slim, keyword, source.get(keyword))
    return slim


def _group(
    finding: InstanceFinding, algorithm: hd.sr.AlgorithmIdentification
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    ref = finding.instance
    frames = [finding.frame + 1] if finding.frame is not None and ref.frames > 1 else None
    source = hd.sr.SourceImageForMeasurementGroup(
        referenced_sop_class_uid=ref.sop_class_uid,
        referenced_sop_instance_uid=ref.sop_uid,
        referenced_frame_numbers=frames,
    )
    top = finding.top_k[0]
    evaluations = [
        hd.sr.QualitativeEvaluation(
            name=FINDING, value=label_concept(int(top["index"]), str(top["label"]))
        )
    ]
    measurements = [
        hd.sr.Measurement(
            name=probability_concept(int(entry["index"]), str(entry["label"])),
            value=float(entry["probability"]),
            unit=NO_UNITS,
        )
        for entry in finding.top_k
    ]
    if finding.ood_score is not None:
        measurements.append(
            hd.sr.Measurement(name=OOD_SCORE, value=finding.ood_score, unit=NO_UNITS)
        )
    if finding.in_distribution is not None:
        evaluations.append(
            hd.sr.QualitativeEvaluation(
                name=IN_DISTRIBUTION, value=YES if finding.in_distribution else NO
            )
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=ref.sop_uid[:64]),
        algorithm_id=algorithm,
        source_images=[source],
        qualitative_evaluations=evaluations,
        measurements=measurements,
    )
