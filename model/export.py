"""Export a checkpoint to ONNX with its model card, checked against PyTorch.

The exported graph takes ``image`` (float32 NCHW, dynamic batch) and returns
``probabilities``: softmax for multiclass/binary, sigmoid for multilabel, so every runtime
and client sees the same numbers the service reports.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from model.card import ExportInfo, ModelCard, write_card
from model.checkpoint import Checkpoint, load_checkpoint
from model.files import write_atomically
from model.layout import model_file, next_version

log = logging.getLogger(__name__)

OPSET = 18
PARITY_TOLERANCE = 1e-4
PARITY_BATCH_SIZES = (1, 3, 17)  # 1 and odd sizes prove the batch axis is really dynamic


class ExportError(RuntimeError):
    """The model cannot be exported correctly."""


@dataclass(frozen=True)
class ParityReport:
    max_abs_diff: float
    batch_sizes: tuple[int, ...]
    top1_agreement: float


@dataclass(frozen=True)
class ExportResult:
    path: Path
    card: ModelCard
    parity: ParityReport


class WithProbabilities(nn.Module):
    """The classifier followed by the output non-linearity its task calls for."""

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        self.model = model
        self.head: nn.Module = nn.Sigmoid() if task == "multilabel" else nn.Softmax(dim=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.model(image))


def check_exportable(model: nn.Module) -> None:
    """Refuse states that would export to a wrong graph, naming the offending tensor."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if isinstance(
            tensor, nn.parameter.UninitializedParameter | nn.parameter.UninitializedBuffer
        ):
            raise ExportError(f"{name} is uninitialised (lazy module never ran a forward pass)")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ExportError(
                f"{name} holds NaN or Inf values: the training diverged; export an earlier "
                "checkpoint (a run's best one) or lower the learning rate"
            )


def export_checkpoint(
    checkpoint: str | Path | Checkpoint,
    models_dir: str | Path,
    name: str,
    *,
    version: int | None = None,
    seed: int = 0,
) -> ExportResult:
    """Write ``models_dir/name/version/model.onnx`` and return its card and parity figures."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    config = ckpt.config
    model = WithProbabilities(ckpt.model, config.task).eval()
    check_exportable(model)

    version = version if version is not None else next_version(Path(models_dir), name)
    target = model_file(Path(models_dir), name, version)
    if target.exists():
        raise ExportError(f"{target} exists already; versions are immutable, pick another")

    channels, size = config.in_channels, config.preprocessing.crop_size
    proto = _to_onnx(model, (channels, size, size))
    parity = check_parity(model, proto.SerializeToString(), (channels, size, size), seed=seed)

    card = ModelCard(
        name=name,
        version=version,
        task=config.task,
        labels=config.labels,
        preprocessing=config.preprocessing,
        architecture=config.architecture,
        architecture_options=config.architecture_options,
        activation=config.activation,
        dataset=config.dataset,
        metrics=ckpt.metrics,
        export=ExportInfo(
            exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
            source_checkpoint_sha256=ckpt.sha256,
            opset=OPSET,
            torch_version=torch.__version__,
            onnx_version=onnx.__version__,
            parity_max_abs_diff=parity.max_abs_diff,
        ),
    )
    write_card(proto, card)
    write_atomically(target, lambda handle: handle.write(proto.SerializeToString()))
    log.info("exported %s (max abs diff %.2e)", target, parity.max_abs_diff)
    return ExportResult(path=target, card=card, parity=parity)


def _to_onnx(model: nn.Module, input_shape: tuple[int, int, int]) -> onnx.ModelProto:
    # Batch 2 in the example so the tracer cannot specialise the batch axis to 1.
    example = torch.zeros(2, *input_shape)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["image"],
            output_names=["probabilities"],
            dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def check_parity(
    model: nn.Module,
    onnx_bytes: bytes,
    input_shape: tuple[int, ...],
    *,
    seed: int = 0,
    tolerance: float = PARITY_TOLERANCE,
) -> ParityReport:
    """Run PyTorch and onnxruntime on the same random batches of several sizes.

    Raises ExportError when any top-1 differs or the max abs difference exceeds tolerance.
    """
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst, agree, total = 0.0, 0, 0
    for batch in PARITY_BATCH_SIZES:
        inputs = torch.randn(batch, *input_shape, generator=generator)
        with torch.no_grad():
            expected = model(inputs).numpy()
        (actual,) = session.run(["probabilities"], {"image": inputs.numpy()})
        if actual.shape != expected.shape:
            raise ExportError(
                f"onnxruntime returned shape {actual.shape} for batch {batch}, "
                f"PyTorch {expected.shape}: the batch axis is not dynamic"
            )
        worst = max(worst, float(np.abs(actual - expected).max()))
        # A row whose two best classes are tied within the tolerance has no meaningful
        # top-1 (common in untrained nets); only decided rows count.
        top2 = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else None
        decided = np.ones(batch, bool) if top2 is None else (top2[:, 1] - top2[:, 0]) > tolerance
        same = actual.argmax(1) == expected.argmax(1)
        agree += int((same | ~decided).sum())
        total += batch
    report = ParityReport(worst, PARITY_BATCH_SIZES, agree / total)
    if report.top1_agreement < 1.0 or worst > tolerance:
        raise ExportError(
            f"ONNX output does not match PyTorch: max abs diff {worst:.3g} "
            f"(tolerance {tolerance:g}), top-1 agreement {report.top1_agreement:.1%}"
        )
    return report
