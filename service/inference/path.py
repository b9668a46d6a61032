"""The one inference path: every protocol (the V1 image API, the Open Inference Protocol)
is an adapter around it.

An adapter resolves the model, then runs its request inside ``InferencePath.request``:

    async with inference.request(model) as call:   # 503 at once at the model's bound
        images = <read and parse the protocol's body>
        result = await call.run(EncodedImages(images))   # or TensorBatch(array)
        return <encode result.probabilities, result.timings_ms as the protocol says>

Everything between parsing and encoding is here, once: admission against the model's
queue bound (asked before the body is read, so a full model refuses at once; a place held
from decoding to the answer, so work waiting for the decode pool counts and a slow upload
holds none), decode and preprocess on the decode pool, the dynamic
batcher, the phase timings, the live latency window and the Prometheus observation with
the status the request ended with.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from service.inference.inputs import EncodedImages, ModelInput
from service.inference.pipeline import ImagePipeline
from service.inference.served_model import ServedModel
from service.plumbing.metrics import ServiceMetrics


@dataclass(frozen=True)
class InferenceResult:
    """The model's outputs for one request's images, and where the time went."""

    model: ServedModel
    outputs: list[np.ndarray]  # one array per graph output, this request's rows only
    batch_size: int  # images in the session.run that served this request
    timings_s: dict[str, float]  # decode, preprocess, queue, inference, total

    @property
    def timings_ms(self) -> dict[str, float]:
        return {phase: seconds * 1000.0 for phase, seconds in self.timings_s.items()}

    @property
    def images(self) -> int:
        return int(self.outputs[0].shape[0])

    @property
    def probabilities(self) -> np.ndarray:
        return self.output(self.model.card.output_name)

    def output(self, name: str) -> np.ndarray:
        return self.outputs[self.model.output_names.index(name)]

    @cached_property
    def ood(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per image: the OOD score (float64) and whether it is in distribution (bool);
        None for a model whose card has no OOD scorer. NumPy, computed once per request."""
        trust = self.model.trust
        if trust is None:
            return None
        features = self.output(trust.features_output) if trust.stats is not None else None
        scores = trust.score(self.output(trust.logits_output), features)
        return scores, trust.inside(scores)

    @property
    def server_timing(self) -> str:
        """A ``Server-Timing`` header value: ``decode;dur=0.412, ...``."""
        return ", ".join(f"{name};dur={value:.3f}" for name, value in self.timings_ms.items())


class InferenceCall:
    """One request on the shared path; made by ``InferencePath.request``."""

    def __init__(self, path: InferencePath, model: ServedModel) -> None:
        self._path = path
        self.model = model
        self.started = time.perf_counter()
        self.status = 500  # until the request is answered, or fails with its own status
        self.result: InferenceResult | None = None

    async def run(self, inputs: ModelInput, *, parse_s: float = 0.0) -> InferenceResult:
        """Decode/preprocess (encoded images), batch and infer; ``parse_s`` is the time the
        protocol spent turning its body into ``inputs`` (reported as part of ``decode``)."""
        model = self.model
        decode_s, preprocess_s = parse_s, 0.0
        with model.batcher.admit():
            if isinstance(inputs, EncodedImages):
                prepared, batch = await self._path.pipeline.prepare_and_submit(
                    inputs.images, inputs.preprocessing(model.card.preprocessing), model.batcher
                )
                decode_s += prepared.decode_s
                preprocess_s = prepared.preprocess_s
            else:
                batch = await model.batcher.submit(inputs.array)
        total_s = time.perf_counter() - self.started
        timings_s = {
            "decode": decode_s,
            "preprocess": preprocess_s,
            "queue": batch.queue_s,
            "inference": batch.inference_s,
            "total": total_s,
        }
        self.result = InferenceResult(model, batch.outputs, batch.batch_size, timings_s)
        self.status = 200
        return self.result

    def add_phase(self, name: str, seconds: float) -> InferenceResult:
        """Record adapter work done after inference (explain's heatmaps) as a phase of its
        own; ``total`` grows by it, in the answer, the latency window and the metrics."""
        if self.result is None:
            raise RuntimeError("add_phase needs a result: call run() first")
        timings_s = dict(self.result.timings_s)
        total_s = timings_s.pop("total") + seconds
        timings_s.update({name: seconds, "total": total_s})  # total stays last
        self.result = replace(self.result, timings_s=timings_s)
        return self.result


class InferencePath:
    """Admission, decoding, batching, timings and metrics for every protocol."""

    def __init__(self, pipeline: ImagePipeline, metrics: ServiceMetrics) -> None:
        self.pipeline = pipeline
        self.metrics = metrics

    @asynccontextmanager
    async def request(self, model: ServedModel) -> AsyncIterator[InferenceCall]:
        """Admit a request to ``model`` and record how it ended.

        Refuses at once (``queue_full``, 503 with Retry-After) when the model already holds
        ``max_queue`` requests, before the adapter reads the body; ``call.run`` holds the
        request's place from decoding to the answer. An exception that leaves
        the block sets the recorded status: its ``status_code`` (``APIError``, the V2
        codec's ``V2Error``) or 500.
        """
        call = InferenceCall(self, model)
        try:
            model.batcher.check_capacity()  # at once, before the adapter reads the body
            yield call
        except BaseException as exc:
            call.status = getattr(exc, "status_code", 500)
            raise
        finally:
            answered = call.result if call.status == 200 else None
            if answered is not None:
                model.latency.add(answered.timings_s["total"])
            self.metrics.observe_prediction(
                model.name,
                model.version,
                call.status,
                answered.timings_s if answered else None,
                answered.images if answered else 0,
            )
            if answered is not None and answered.ood is not None:
                self.metrics.observe_ood(model.name, *answered.ood)
