"""Export a checkpoint to ONNX with its model card, checked against PyTorch.

The exported graph takes ``image`` (float32 NCHW, dynamic batch) and returns
``probabilities``: softmax for multiclass/binary, sigmoid for multilabel, so every runtime
and client sees the same numbers the service reports. Architectures whose head is global
average pooling plus one linear layer also get ``class_maps`` (see ``model/cam_graph.py``),
recorded in the card, so the service can explain predictions without torch.

Given the run's own images (``TrustImages``), export also fits trust (``model/trust_fit.py``):
the graph's ``probabilities`` become softmax(logits / T), it gains the outputs ``logits``
and ``features``, the feature statistics go to ``ood_stats.npz`` beside model.onnx, and the
card's ``trust`` section records T, the scorer, its threshold and their figures.
"""

from __future__ import annotations

import hashlib
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

from model.architectures import ARCHITECTURES
from model.cam_graph import CamHeadError, WithClassMaps, check_global_pool_head
from model.card import (
    ClassActivationMaps,
    ExportInfo,
    ModelCard,
    OodStatistics,
    Trust,
    write_card,
)
from model.checkpoint import Checkpoint, load_checkpoint
from model.files import write_atomically
from model.layout import beside_model, model_file, next_version
from model.trust import STATS_FILE
from model.trust_fit import FittedTrust, TrustImages, WithTrustOutputs, fit_trust

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
    # Largest class-map difference relative to the largest map value (None: no maps).
    class_maps_max_rel_diff: float | None = None
    # The same for the logits and features outputs (None: exported without trust).
    trust_max_rel_diff: float | None = None


@dataclass(frozen=True)
class ExportResult:
    path: Path
    card: ModelCard
    parity: ParityReport


def output_head(task: str) -> nn.Module:
    """The output non-linearity a task calls for."""
    return nn.Sigmoid() if task == "multilabel" else nn.Softmax(dim=1)


class WithProbabilities(nn.Module):
    """The classifier followed by the output non-linearity its task calls for."""

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        self.model = model
        self.head = output_head(task)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.model(image))


def exportable_model(
    model: nn.Module, architecture: str, task: str, input_shape: tuple[int, int, int]
) -> tuple[nn.Module, ClassActivationMaps | None]:
    """The graph to export, with class maps when the architecture's head allows them."""
    definition = ARCHITECTURES.get(architecture)
    layers = definition.cam if definition is not None else None
    if layers is None:
        return WithProbabilities(model, task).eval(), None
    try:
        wrapper = WithClassMaps(model, output_head(task), layers).eval()
        grid = check_global_pool_head(wrapper, torch.zeros(2, *input_shape).normal_())
    except CamHeadError as exc:
        raise ExportError(
            f"{architecture} is registered with CAM layers that are wrong: {exc}"
        ) from exc
    return wrapper, ClassActivationMaps(feature_layer=layers.features, grid=grid)


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
    trust: TrustImages | None = None,
) -> ExportResult:
    """Write ``models_dir/name/version/model.onnx`` and return its card and parity figures.

    ``trust``: the run's own training and validation images, to fit calibration and the OOD
    score from (None: exported without them, as before).
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    config = ckpt.config
    channels, size = config.in_channels, config.preprocessing.crop_size
    model, class_maps = exportable_model(
        ckpt.model.eval(), config.architecture, config.task, (channels, size, size)
    )
    check_exportable(model)
    fitted: FittedTrust | None = None
    if trust is not None and config.task == "multilabel":
        log.warning("multilabel models are exported without calibration and OOD score")
    elif trust is not None:
        head = output_head(config.task)
        fitted = fit_trust(ckpt.model, head, trust, num_classes=len(config.labels))
        maps = model if isinstance(model, WithClassMaps) else None
        model = WithTrustOutputs(
            ckpt.model, output_head(config.task), fitted.calibration.temperature, maps
        ).eval()

    version = version if version is not None else next_version(Path(models_dir), name)
    target = model_file(Path(models_dir), name, version)
    if target.exists():
        raise ExportError(f"{target} exists already; versions are immutable, pick another")

    output_names = ["probabilities"] if class_maps is None else ["probabilities", "class_maps"]
    if fitted is not None:
        output_names += ["logits", "features"]
    proto = _to_onnx(model, (channels, size, size), output_names)
    parity = check_parity(
        model, proto.SerializeToString(), (channels, size, size), seed=seed, names=output_names
    )
    trust_section, stats_bytes = None, b""
    if fitted is not None:
        stats_bytes = fitted.stats.to_bytes()
        digest = hashlib.sha256(stats_bytes).hexdigest()
        trust_section = Trust(
            dataset=trust.dataset if trust is not None else config.dataset,
            calibration=fitted.calibration,
            ood=fitted.ood(OodStatistics(file=STATS_FILE, sha256=digest)),
        )

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
        class_activation_maps=class_maps,
        trust=trust_section,
    )
    write_card(proto, card)
    _write_model(target, proto, stats_bytes)
    log.info("exported %s (max abs diff %.2e)", target, parity.max_abs_diff)
    return ExportResult(path=target, card=card, parity=parity)


def _write_model(target: Path, proto: onnx.ModelProto, stats: bytes) -> None:
    """The statistics file first, then the model; neither stays when the model fails."""
    stats_path = beside_model(target, STATS_FILE)
    if stats:
        write_atomically(stats_path, lambda handle: handle.write(stats))
    try:
        write_atomically(target, lambda handle: handle.write(proto.SerializeToString()))
    except BaseException:
        if stats:
            stats_path.unlink(missing_ok=True)
        raise


def _to_onnx(
    model: nn.Module, input_shape: tuple[int, int, int], output_names: list[str]
) -> onnx.ModelProto:
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
            output_names=output_names,
            dynamic_axes={"image": {0: "batch"}, **{name: {0: "batch"} for name in output_names}},
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
    names: list[str] | None = None,
) -> ParityReport:
    """Run PyTorch and onnxruntime on the same random batches of several sizes.

    Every output after the first (``names``, in graph order) is compared relative to its
    largest value. Raises ExportError when any top-1 differs or a difference exceeds
    tolerance.
    """
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst, agree, total = 0.0, 0, 0
    extra_worst: dict[str, float] = {}
    for batch in PARITY_BATCH_SIZES:
        inputs = torch.randn(batch, *input_shape, generator=generator)
        with torch.no_grad():
            outputs = model(inputs)
        expected, *expected_extra = [
            t.numpy() for t in (outputs if isinstance(outputs, tuple) else [outputs])
        ]
        actual, *actual_extra = session.run(None, {"image": inputs.numpy()})
        extra_names = (names or ["probabilities", "class_maps"])[1:]
        for name, a, e in zip(extra_names, actual_extra, expected_extra, strict=False):
            extra_worst[name] = max(extra_worst.get(name, 0.0), _relative_diff(a, e, name))
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
    trust_worst = [v for k, v in extra_worst.items() if k in ("logits", "features")]
    report = ParityReport(
        worst,
        PARITY_BATCH_SIZES,
        agree / total,
        extra_worst.get("class_maps"),
        max(trust_worst) if trust_worst else None,
    )
    if report.top1_agreement < 1.0 or worst > tolerance:
        raise ExportError(
            f"ONNX output does not match PyTorch: max abs diff {worst:.3g} "
            f"(tolerance {tolerance:g}), top-1 agreement {report.top1_agreement:.1%}"
        )
    for name, value in extra_worst.items():
        if value > tolerance:
            raise ExportError(
                f"ONNX {name} do not match PyTorch: max relative diff {value:.3g} "
                f"(tolerance {tolerance:g})"
            )
    return report


def _relative_diff(actual: np.ndarray, expected: np.ndarray, name: str) -> float:
    if actual.shape != expected.shape:
        raise ExportError(f"onnxruntime {name} {actual.shape}, PyTorch {expected.shape}")
    scale = max(1.0, float(np.abs(expected).max()))
    return float(np.abs(actual - expected).max()) / scale
