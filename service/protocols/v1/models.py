"""``GET /v1/models`` and ``GET /v1/models/{name}[/versions/{version}]``: cards, versions,
providers in use, input shape, batching settings and live latency percentiles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from service.app.auth import require_api_key
from service.app.deps import State
from service.app.repository import ModelRepository
from service.inference.served_model import ServedModel
from service.protocols.v1.schemas import ModelInfo, ModelList, ModelVersionInfo, error_responses

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[Depends(require_api_key)])

_MODEL_ROUTE_ERRORS = error_responses(401, 404, 422, 503)


def version_info(model: ServedModel) -> dict[str, Any]:
    batcher = model.batcher
    shape = model.session.get_inputs()[0].shape
    return {
        "version": model.version,
        "card": model.card.model_dump(mode="json"),
        "providers": model.providers,
        "input_name": model.input_name,
        "input_shape": [dim if isinstance(dim, int) else -1 for dim in shape],
        "output_names": model.output_names,
        "batching": {
            "max_batch_size": batcher.max_batch_size,
            "max_batch_delay_ms": batcher.max_delay_s * 1000.0,
            "max_queue": batcher.max_queue,
            "streams": batcher.streams,
            "queue_depth": batcher.queue_depth,
            "in_flight": batcher.admitted,
        },
        "latency_ms": model.latency.percentiles_ms(),
        "trust": trust_info(model),
        "load_seconds": model.load_seconds,
    }


def trust_info(model: ServedModel) -> dict[str, Any] | None:
    """Whether the probabilities are calibrated and which OOD score answers carry."""
    trust = model.card.trust
    if trust is None:
        return None
    ood = trust.ood
    return {
        "calibrated": True,
        "temperature": trust.calibration.temperature,
        "ood_scorer": ood.scorer if ood is not None else None,
        "ood_threshold": ood.threshold if ood is not None else None,
    }


def model_info(repository: ModelRepository, name: str) -> dict[str, Any]:
    newest = repository.get(name)
    versions = repository.models[name]
    return {
        "name": name,
        "default_version": newest.version,
        "versions": [version_info(versions[v]) for v in sorted(versions, reverse=True)],
    }


@router.get(
    "/models", response_model=ModelList, responses=_MODEL_ROUTE_ERRORS, summary="List the models"
)
async def list_models(state: State) -> dict[str, Any]:
    repository = state.ready_repository()
    return {
        "models": [model_info(repository, name) for name in sorted(repository.models)],
        "failed": [
            {"model": f.name, "version": f.version, "reason": f.reason} for f in repository.failures
        ],
    }


@router.get(
    "/models/{name}", response_model=ModelInfo, responses=_MODEL_ROUTE_ERRORS, summary="One model"
)
async def get_model(state: State, name: str) -> dict[str, Any]:
    return model_info(state.ready_repository(), name)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelVersionInfo,
    responses=_MODEL_ROUTE_ERRORS,
    summary="One version of a model",
)
async def get_model_version(state: State, name: str, version: int = Path(ge=1)) -> dict[str, Any]:
    return version_info(state.ready_repository().get(name, version))
