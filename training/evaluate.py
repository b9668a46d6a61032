"""Re-compute the test metrics and activation diagnostics of a checkpoint or run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.checkpoint import ModelConfig, load_checkpoint
from training.config import EVALUATE_BATCH_SIZE, TrainConfig
from training.data import default_workers, eval_loader
from training.datasets import DatasetBundle, DatasetError, load_dataset
from training.diagnostics import ActivationMonitor, LayerStats, summarize
from training.engine import Predictions, predict, select_device
from training.metrics import evaluate_scores
from training.run_folder import RunFolder, checkpoint_in


@dataclass(frozen=True)
class FinalEvaluation:
    """What a finished run measured on its test split (the report's and card's figures)."""

    metrics: dict[str, float]
    layers: list[LayerStats]
    predictions: Predictions
    train_seconds: float


def evaluate_model(
    model: torch.nn.Module,
    bundle: DatasetBundle,
    model_config: ModelConfig,
    batch_size: int,
    workers: int,
    device: torch.device,
) -> tuple[dict[str, float], list[LayerStats], Predictions]:
    """Test metrics and activation diagnostics of ``model`` on the bundle's test split."""
    loader = eval_loader(bundle, bundle.test, model_config.preprocessing, batch_size, workers)
    monitor = ActivationMonitor(model)
    preds = predict(model, loader, device=device, task=bundle.task, monitor=monitor)
    layers = monitor.results()
    metrics = {**evaluate_scores(preds.targets, preds.scores, bundle.task), **summarize(layers)}
    return metrics, layers, preds


@dataclass(frozen=True)
class Evaluation:
    checkpoint: Path
    dataset: str
    metrics: dict[str, float]
    layers: list[LayerStats]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "dataset": self.dataset,
            "test": self.metrics,
            "layers": [s.to_dict() for s in self.layers],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def resolve_checkpoint(path: Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint file and the run's recorded config (empty for a bare file)."""
    checkpoint = checkpoint_in(path)
    return checkpoint, RunFolder(checkpoint.parent).recorded_config()


def evaluate(
    path: str | Path,
    *,
    data: str | None = None,
    data_root: str | None = None,
    batch_size: int = EVALUATE_BATCH_SIZE,
    device: str = TrainConfig.device,
    workers: int | None = None,
    max_samples: int | None = None,
) -> Evaluation:
    """Test-split metrics of the checkpoint, with the preprocessing recorded in it.

    ``data``/``data_root`` default to what the run folder recorded.
    """
    checkpoint_path, recorded = resolve_checkpoint(Path(path))
    data = data or recorded.get("data")
    if data is None:
        raise DatasetError("--data is needed: the checkpoint has no run config beside it")
    data_root = data_root or recorded.get("data_root")
    checkpoint = load_checkpoint(checkpoint_path)
    config = checkpoint.config
    bundle = load_dataset(
        data,
        data_root,
        seed=int(recorded.get("seed", 0)),
        img_size=config.preprocessing.crop_size,
    ).limited(max_samples)
    if bundle.labels != config.labels:
        raise DatasetError(
            f"{data} has labels {list(bundle.labels)[:5]}..., the checkpoint was trained on "
            f"{list(config.labels)[:5]}...: not the same dataset"
        )
    torch_device = select_device(device)
    model = checkpoint.model.to(torch_device)
    metrics, layers, _ = evaluate_model(
        model,
        bundle,
        config,
        batch_size,
        workers if workers is not None else default_workers(),
        torch_device,
    )
    return Evaluation(checkpoint_path, bundle.name, metrics, layers)
