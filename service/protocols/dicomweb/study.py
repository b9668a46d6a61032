"""Classify a study's instances on the shared inference path and write its report.

Both DICOMweb routes (the pull, ``pull.py``, and the STOW-RS receiver, ``stow.py``) hand
their instances here: screened ones (``instances.screen``) go through
``InferencePath.request`` + ``call.run(EncodedImages(...))`` in chunks of
``max_images_per_request`` (each chunk one request on the path: admission, decoding,
batching, timings and metrics as ``/predict`` has them), and answer ``/predict``'s
``predictions`` per instance. A chunk that fails on one instance is retried instance by
instance, so the failing one is skipped with its reason and the others are classified.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from model.card import card_digest
from service.inference.inputs import EncodedImages
from service.inference.path import InferencePath
from service.inference.served_model import ServedModel
from service.plumbing.errors import APIError
from service.protocols.dicomweb.client import Pacs
from service.protocols.dicomweb.instances import InstanceRef, Skipped
from service.protocols.dicomweb.report import InstanceFinding, ModelIdentity, build_report
from service.protocols.v1.image_api import format_predictions

# Errors that are about the server, not about one instance: they end the whole request.
_REQUEST_ERRORS = frozenset({"queue_full", "not_ready", "internal_error"})
# Phases of a study's answer, in the order they happen; the path's phases are summed.
PATH_PHASES = ("decode", "preprocess", "queue", "inference")


@dataclass(frozen=True)
class Source:
    """An instance to classify: where it is, its header (the report's evidence) and, once
    fetched, its Part 10 bytes."""

    ref: InstanceRef
    header: Dataset
    data: bytes = b""


@dataclass
class StudyResults:
    """What a request's instances came to, and where the time went (seconds)."""

    model: ServedModel
    top_k: int
    frame: int | None
    classified: list[tuple[Source, dict[str, Any]]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def add_time(self, phase: str, seconds: float) -> None:
        self.timings_s[phase] = self.timings_s.get(phase, 0.0) + seconds

    def instances_json(self) -> list[dict[str, Any]]:
        return [
            {**source.ref.as_json(), "predictions": [prediction]}
            for source, prediction in self.classified
        ]

    def skipped_json(self) -> list[dict[str, Any]]:
        return [skip.as_json() for skip in self.skipped]

    def identity(self) -> ModelIdentity:
        model = self.model
        return ModelIdentity(model.name, model.version, card_digest(model.card))

    def answer(self, study_uid: str | None, report: dict[str, Any]) -> dict[str, Any]:
        """The JSON answer: per instance ``/predict``'s ``predictions``, the skipped
        instances with their reasons, the report and the timings."""
        timings = dict(self.timings_s)
        timings["total"] = timings.pop("total", 0.0)  # last
        identity = self.identity()
        body: dict[str, Any] = {
            "model": identity.name,
            "version": identity.version,
            "card_digest": identity.card_digest,
            "task": self.model.card.task,
        }
        if study_uid is not None:
            body["study_uid"] = study_uid
        body.update(
            {
                "instances": self.instances_json(),
                "skipped": self.skipped_json(),
                "report": report,
                "timings_ms": {phase: s * 1000.0 for phase, s in timings.items()},
            }
        )
        return body


async def classify(
    inference: InferencePath, results: StudyResults, sources: Sequence[Source]
) -> None:
    """Classify ``sources``, adding to ``results``: the single-frame instances in one
    request on the shared path, the multi-frame ones (with the request's frame) in another."""
    single = [source for source in sources if source.ref.frames == 1]
    multi = [source for source in sources if source.ref.frames > 1]
    await _classify(inference, results, single, None)
    await _classify(inference, results, multi, results.frame)


async def _classify(
    inference: InferencePath,
    results: StudyResults,
    sources: Sequence[Source],
    frame: int | None,
) -> None:
    if not sources:
        return
    try:
        async with inference.request(results.model) as call:
            outcome = await call.run(EncodedImages(tuple(s.data for s in sources), frame))
    except APIError as exc:
        if exc.code in _REQUEST_ERRORS:
            raise
        if len(sources) == 1:
            results.skipped.append(Skipped(sources[0].ref, exc.code, exc.message))
            return
        for source in sources:  # find the instance that failed; classify the others
            await _classify(inference, results, [source], frame)
        return
    for phase in PATH_PHASES:
        results.add_time(phase, outcome.timings_s[phase])
    predictions = format_predictions(
        results.model, outcome.probabilities, results.top_k, outcome.ood
    )
    results.classified.extend(zip(sources, predictions, strict=True))


def findings_of(results: StudyResults) -> list[InstanceFinding]:
    chosen = results.frame if results.frame is not None else results.model.card.preprocessing.frame
    return [
        InstanceFinding(
            source.ref,
            prediction["top_k"],
            chosen if source.ref.frames > 1 else None,
            prediction.get("ood_score"),
            prediction.get("in_distribution"),
        )
        for source, prediction in results.classified
    ]


async def write_report(results: StudyResults, pacs: Pacs | None, store: bool) -> dict[str, Any]:
    """Build the study's SR and store it (STOW-RS); the answer's ``report`` part.

    Nothing classified: no report. ``store`` false or no PACS: built, not stored. The PACS
    refusing it: ``pacs_store_failed`` whose detail is filled in by the caller."""
    if not results.classified:
        return {"stored": False, "reason": "no instance was classified"}
    started = time.perf_counter()
    evidence = [source.header for source, _ in results.classified]
    report = await asyncio.to_thread(
        build_report, evidence, findings_of(results), results.identity()
    )
    results.add_time("report", time.perf_counter() - started)
    uids = {
        "study_uid": str(report.StudyInstanceUID),
        "series_uid": str(report.SeriesInstanceUID),
        "sop_instance_uid": str(report.SOPInstanceUID),
    }
    if not store:
        return {"stored": False, "reason": "store=false: classified only", **uids}
    if pacs is None:
        return {"stored": False, "reason": "no PACS is configured (RECTIFIER_DICOMWEB_URL)"}
    started = time.perf_counter()
    try:
        await asyncio.to_thread(pacs.store, report)
    finally:
        results.add_time("store", time.perf_counter() - started)
    return {"stored": True, **uids}
