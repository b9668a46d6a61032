"""Small models for the tests: a checkpoint built from a random but non-trivial network,
and a Triton-layout repository of exported models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ExportedModel:
    name: str
    checkpoint: Path
    onnx_path: Path


def make_checkpoint(
    path: Path,
    *,
    color_mode: str = "RGB",
    labels: tuple[str, ...] = ("cat", "dog", "bird"),
    task: str = "multiclass",
    architecture: str = "simple_cnn",
    activation: str = "relu",
    resize_size: int = 36,
    crop_size: int = 32,
    seed: int = 0,
    window: tuple[float, float] | None = None,
) -> Path:
    """A randomly initialised but non-trivial checkpoint (weights scaled so outputs differ).

    ``window`` (center, width) is a fixed DICOM window recorded in the card.
    """
    import torch

    from model.card import DicomPolicy, Preprocessing, Window
    from model.checkpoint import ModelConfig, save_checkpoint

    channels = 1 if color_mode == "L" else 3
    config = ModelConfig(
        architecture=architecture,
        activation=activation,
        task=task,  # type: ignore[arg-type]
        labels=labels,
        preprocessing=Preprocessing(
            color_mode=color_mode,  # type: ignore[arg-type]
            resize_size=resize_size,
            crop_size=crop_size,
            mean=(0.485, 0.456, 0.406)[:channels] if channels == 3 else (0.5,),
            std=(0.229, 0.224, 0.225)[:channels] if channels == 3 else (0.25,),
            dicom=DicomPolicy(
                window=None if window is None else Window(center=window[0], width=window[1])
            ),
        ),
        dataset="synthetic-test",
        architecture_options={"width": 8, "depth": 2} if architecture == "simple_cnn" else {},
    )
    torch.manual_seed(seed)
    model = config.build()
    with torch.no_grad():  # spread the logits so probabilities are not all uniform
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(20)
    model.eval()
    return save_checkpoint(path, config, model, metrics={"test_accuracy": 0.5})


def export_model_repo(root: Path, checkpoints: Path) -> dict[str, ExportedModel]:
    """Write an RGB model ``rgb`` and a grayscale model ``gray``: checkpoints under
    ``checkpoints``, ONNX exports in a repository at ``root``. Returns name -> ExportedModel."""
    from model.export import export_checkpoint

    models = {}
    for name, color_mode, labels in (
        ("rgb", "RGB", ("cat", "dog", "bird")),
        ("gray", "L", ("normal", "pneumonia")),
    ):
        ckpt = make_checkpoint(checkpoints / f"{name}.pt", color_mode=color_mode, labels=labels)
        result = export_checkpoint(ckpt, root, name)
        models[name] = ExportedModel(name, ckpt, result.path)
    return models
