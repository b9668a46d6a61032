"""Response schemas, named by role. The routes build plain dicts (rendered with orjson for
speed); these classes document the shapes in OpenAPI and let tests validate bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LabelScore(BaseModel):
    label: str
    index: int
    probability: float


class ImagePrediction(BaseModel):
    top_k: list[LabelScore] = Field(description="The k most probable labels, best first.")
    labels_above_threshold: list[str] | None = Field(
        default=None, description="Multilabel models: every label at or above card.threshold."
    )
    ood_score: float | None = Field(
        default=None,
        description="Models with an OOD scorer (card.trust.ood): higher = less like the "
        "training data (docs/trust.md). Absent for other models.",
    )
    in_distribution: bool | None = Field(
        default=None, description="ood_score at or under the card's threshold."
    )
    notice: str | None = Field(
        default=None, description="A plain warning, present when the image is out of distribution."
    )


class Timings(BaseModel):
    decode: float = Field(description="Milliseconds decoding the image(s), summed.")
    preprocess: float = Field(description="Milliseconds resizing and normalising, summed.")
    queue: float = Field(description="Milliseconds waiting for a batch slot.")
    inference: float = Field(description="Milliseconds of the session.run this request rode in.")
    total: float = Field(description="Milliseconds from request received to response ready.")


class PredictionResponse(BaseModel):
    model: str
    version: int
    task: str
    predictions: list[ImagePrediction]
    batch_size: int = Field(description="Images in the session.run this request rode in.")
    timings_ms: Timings


class Explanation(BaseModel):
    label: str = Field(description="The class explained: the top-1, or the one requested.")
    index: int
    probability: float
    grid: list[list[float]] = Field(
        description="Class-activation heatmap in [0, 1], rows top to bottom, over the "
        "model's (resized, centre-cropped) view of the image."
    )
    grid_size: list[int] = Field(description="[height, width] of the grid.")


class ExplainTimings(Timings):
    explain: float = Field(description="Milliseconds turning class maps into heatmaps.")


class ExplanationResponse(BaseModel):
    model: str
    version: int
    task: str
    predictions: list[ImagePrediction]
    explanations: list[Explanation]
    method: str = Field(description="cam: class activation mapping (equal to Grad-CAM here).")
    batch_size: int
    timings_ms: ExplainTimings


class LatencyPercentiles(BaseModel):
    count: int
    p50: float | None
    p90: float | None
    p99: float | None


class BatchingInfo(BaseModel):
    max_batch_size: int
    max_batch_delay_ms: float
    max_queue: int
    streams: int = Field(description="Batches that run concurrently (RECTIFIER_INFERENCE_STREAMS).")
    queue_depth: int
    in_flight: int = Field(description="Image API requests admitted (decoding or queued).")


class TrustInfo(BaseModel):
    calibrated: bool = Field(description="top_k probabilities are softmax(logits / T).")
    temperature: float
    ood_scorer: str | None = Field(description="The score answers carry as ood_score.")
    ood_threshold: float | None


class ModelVersionInfo(BaseModel):
    version: int
    card: dict[str, Any]
    providers: list[str]
    input_name: str
    input_shape: list[int | str]
    output_names: list[str]
    batching: BatchingInfo
    latency_ms: LatencyPercentiles
    load_seconds: float
    trust: TrustInfo | None = Field(
        default=None, description="None: raw probabilities and no ood_score (docs/trust.md)."
    )


class ModelInfo(BaseModel):
    name: str
    default_version: int
    versions: list[ModelVersionInfo]


class ModelFailureInfo(BaseModel):
    model: str
    version: int | None
    reason: str


class ModelList(BaseModel):
    models: list[ModelInfo]
    failed: list[ModelFailureInfo]


class ErrorDetail(BaseModel):
    code: str
    message: str
    detail: Any = None
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A V1 route's documented error statuses (OpenAPI ``responses``), each with the one V1
    error shape, ``ErrorResponse``."""
    return {status: {"model": ErrorResponse} for status in statuses}


class ReadinessResponse(BaseModel):
    status: str
    state: str
    models: list[str]
    failed: list[dict[str, Any]]
