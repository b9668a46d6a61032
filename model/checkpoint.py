"""Checkpoint format: the model's full config with its weights, in one ``.pt`` file.

Export, evaluation and serving rebuild the model from the file alone. Files are written
atomically (temporary file + rename) so an interrupted save never leaves half a checkpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.architectures import build_model
from model.card import Preprocessing, Task
from model.files import write_atomically

CHECKPOINT_FORMAT = "rectifier-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file is not a readable Rectifier checkpoint."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model and preprocess its inputs."""

    architecture: str
    activation: str
    task: Task
    labels: tuple[str, ...]
    preprocessing: Preprocessing
    dataset: str
    architecture_options: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def in_channels(self) -> int:
        return self.preprocessing.channels

    def build(self) -> nn.Module:
        return build_model(
            self.architecture,
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            activation=self.activation,
            **self.architecture_options,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["preprocessing"] = self.preprocessing.model_dump(mode="json")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        data["labels"] = tuple(data["labels"])
        data["preprocessing"] = Preprocessing.model_validate(data["preprocessing"])
        return cls(**data)


@dataclass
class Checkpoint:
    config: ModelConfig
    model: nn.Module
    metrics: dict[str, float]
    sha256: str
    training_state: dict[str, Any] | None = None


def save_checkpoint(
    path: str | Path,
    config: ModelConfig,
    model: nn.Module,
    *,
    metrics: dict[str, float] | None = None,
    training_state: dict[str, Any] | None = None,
) -> Path:
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model_config": config.to_dict(),
        "state_dict": model.state_dict(),
        "metrics": dict(metrics or {}),
        "training_state": training_state,
    }
    write_atomically(path, lambda handle: torch.save(payload, handle))
    return path


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(path: str | Path, *, map_location: str = "cpu") -> Checkpoint:
    """Rebuild the model from a checkpoint file; the model is returned in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a Rectifier checkpoint (no {CHECKPOINT_FORMAT!r} tag)"
        )
    if payload.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {payload.get('format_version')}, "
            f"this build reads version {CHECKPOINT_VERSION}"
        )
    config = ModelConfig.from_dict(payload["model_config"])
    model = config.build()
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the recorded config: {exc}") from exc
    model.eval()
    return Checkpoint(
        config=config,
        model=model,
        metrics=dict(payload.get("metrics") or {}),
        sha256=file_sha256(path),
        training_state=payload.get("training_state"),
    )
