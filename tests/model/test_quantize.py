"""int8 and fp16 exports of a small trained model: graph shape, card, report, the agreement
gate, the calibration sources, and the CLI flags. No speeds are asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image
from typer.testing import CliRunner

from model import quantize
from model.card import read_card
from model.quantize import QuantizationError, export_reduced_precision, load_image_set

pytestmark = pytest.mark.heavy

LABELS = ("red", "green", "blue")
SIZE = 32


def _colour_image(rng: np.random.Generator, label: int) -> np.ndarray:
    """A noisy image whose dominant channel is its class: learnable in a few steps."""
    pixels = rng.integers(0, 90, (SIZE + 4, SIZE + 4, 3))
    pixels[..., label] += rng.integers(110, 165)
    return pixels.clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/<class>/*.png and test/<class>/*.png."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for split, count in (("train", 40), ("test", 20)):
        for label, name in enumerate(LABELS):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(_colour_image(rng, label)).save(folder / f"{i}.png")
    return root


def _train_checkpoint(folder: Path, dataset: Path, activation: str) -> Path:
    """simple_cnn trained briefly on the colour classes, so its top-1 is decisive."""
    import torch

    from model.card import Preprocessing
    from model.checkpoint import ModelConfig, save_checkpoint

    config = ModelConfig(
        architecture="simple_cnn",
        activation=activation,
        task="multiclass",
        labels=LABELS,
        preprocessing=Preprocessing(
            color_mode="RGB",
            resize_size=SIZE,
            crop_size=SIZE,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
        ),
        dataset="synthetic-colours",
        architecture_options={"width": 8, "depth": 2},
    )
    images = load_image_set(dataset, config.preprocessing, LABELS, calibration=120, holdout=60)
    assert images.holdout_targets is not None
    train_x = torch.from_numpy(images.holdout)  # the test split trains; train calibrates
    train_y = torch.from_numpy(images.holdout_targets)
    torch.manual_seed(0)
    model = config.build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(train_x), train_y)
        loss.backward()
        optimizer.step()
    model.eval()
    return save_checkpoint(folder / "colours.pt", config, model, metrics={"test_accuracy": 1.0})


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory, dataset: Path) -> Path:
    return _train_checkpoint(tmp_path_factory.mktemp("ckpt"), dataset, "relu")


def _op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_int8_export_is_static_qdq_per_channel(
    tmp_path: Path, trained_checkpoint: Path, dataset: Path
) -> None:
    result = export_reduced_precision(
        trained_checkpoint, tmp_path, "colours", precision="int8", calibration=dataset
    )
    assert result.path == tmp_path / "colours" / "1" / "model.onnx"
    proto = onnx.load(str(result.path))
    ops = [node.op_type for node in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # Per-channel: the conv weights' DequantizeLinear carries one scale per output channel.
    initializers = {t.name: t for t in proto.graph.initializer}
    weight_scales = [
        initializers[node.input[1]]
        for node in proto.graph.node
        if node.op_type == "DequantizeLinear" and node.input[0] in initializers
        and initializers[node.input[0]].data_type == onnx.TensorProto.INT8
    ]  # fmt: skip
    assert weight_scales and max(len(s.dims) and s.dims[0] for s in weight_scales) > 1
    # The probabilities are computed in float, after the last DequantizeLinear.
    softmax = next(node for node in proto.graph.node if node.op_type == "Softmax")
    assert softmax.output[0] == "probabilities"

    card = read_card(result.path)
    assert card.export is not None and card.export.precision == "int8"
    assert card.labels == LABELS

    report = json.loads((result.path.parent / quantize.REPORT_NAME).read_text())
    assert report["precision"] == "int8"
    assert report["top1_agreement"] >= 0.99
    assert report["images"] == 60  # the test split is the holdout
    assert report["settings"]["per_channel"] is True
    assert report["settings"]["format"] == "QDQ"
    assert report["accuracy_fp32"] is not None and report["accuracy_reduced"] is not None

    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    batch = np.zeros((5, 3, SIZE, SIZE), np.float32)
    (probabilities,) = session.run(["probabilities"], {"image": batch})
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)


def test_int8_below_the_agreement_floor_fails_and_writes_nothing(
    tmp_path: Path, trained_checkpoint: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quantize.checks, "MIN_INT8_AGREEMENT", 1.01)  # unreachable
    with pytest.raises(QuantizationError, match="top-1 agreement"):
        export_reduced_precision(
            trained_checkpoint, tmp_path, "colours", precision="int8", calibration=dataset
        )
    assert not (tmp_path / "colours" / "1").exists()


def test_int8_needs_calibration(tmp_path: Path, trained_checkpoint: Path) -> None:
    with pytest.raises(QuantizationError, match="calibration"):
        export_reduced_precision(
            trained_checkpoint, tmp_path, "colours", precision="int8", calibration=None
        )


def test_fp16_export_keeps_float32_io(tmp_path: Path, trained_checkpoint: Path) -> None:
    result = export_reduced_precision(
        trained_checkpoint, tmp_path, "colours", precision="fp16", calibration=None
    )
    proto = onnx.load(str(result.path))
    float32 = onnx.TensorProto.FLOAT
    assert proto.graph.input[0].type.tensor_type.elem_type == float32
    assert proto.graph.output[0].type.tensor_type.elem_type == float32
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    card = read_card(result.path)
    assert card.export is not None and card.export.precision == "fp16"
    assert result.report.max_abs_diff <= quantize.FP16_TOLERANCE
    if quantize.gpu_provider() is None:
        assert "GPU parity not checked" in result.report.notes
        assert "emulated" in result.report.checked_on


def test_image_folder_without_splits_is_split_at_random(tmp_path: Path, dataset: Path) -> None:
    from model.card import Preprocessing

    spec = Preprocessing(color_mode="L", resize_size=16, crop_size=12, mean=(0.5,), std=(0.25,))
    images = load_image_set(dataset / "train", spec, LABELS, calibration=60, holdout=30)
    assert images.calibration.shape == (60, 1, 12, 12)
    assert images.holdout.shape == (30, 1, 12, 12)
    assert images.holdout_targets is not None  # class folders named after the labels
    assert images.calibration.dtype == np.float32


def test_npz_source_uses_train_and_test_arrays(tmp_path: Path) -> None:
    from model.card import Preprocessing

    rng = np.random.default_rng(1)
    path = tmp_path / "tiny.npz"
    np.savez(
        path,
        train_images=rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
        train_labels=rng.integers(0, 2, (20, 1)),
        test_images=rng.integers(0, 255, (8, 28, 28), dtype=np.uint8),
        test_labels=rng.integers(0, 2, (8, 1)),
    )
    spec = Preprocessing(color_mode="L", resize_size=28, crop_size=28, mean=(0.5,), std=(0.5,))
    images = load_image_set(path, spec, ("a", "b"))
    assert images.calibration.shape == (20, 1, 28, 28)
    assert images.holdout.shape == (8, 1, 28, 28)
    assert images.holdout_targets is not None and images.holdout_targets.shape == (8,)


def test_empty_or_missing_sources_are_refused(tmp_path: Path) -> None:
    from model.card import Preprocessing

    spec = Preprocessing(color_mode="L", resize_size=8, crop_size=8, mean=(0.5,), std=(0.5,))
    with pytest.raises(QuantizationError, match="no images"):
        load_image_set(tmp_path, spec)
    with pytest.raises(QuantizationError, match="neither"):
        load_image_set(tmp_path / "missing", spec)


def test_cli_flags(tmp_path: Path, trained_checkpoint: Path, dataset: Path) -> None:
    from model.cli import app

    runner = CliRunner()
    base = ["export", str(trained_checkpoint), "--out", str(tmp_path), "--name", "colours"]
    result = runner.invoke(app, [*base, "--quantize", "int8", "--calibration", str(dataset)])
    assert result.exit_code == 0, result.output
    assert "int8" in result.output and "top-1 agreement" in result.output
    assert read_card(tmp_path / "colours" / "1" / "model.onnx").export.precision == "int8"  # type: ignore[union-attr]

    refused = {
        "int4": [*base, "--quantize", "int4", "--calibration", str(dataset)],
        "no calibration": [*base, "--quantize", "int8"],
        "both": [*base, "--quantize", "int8", "--fp16", "--calibration", str(dataset)],
    }
    for why, args in refused.items():
        outcome = runner.invoke(app, args)
        assert outcome.exit_code == 2, (why, outcome.output)


def test_a_run_folder_calibrates_on_its_own_dataset(tmp_path: Path, dataset: Path) -> None:
    """``rectifier export RUN --quantize int8``: the run's config.yaml names the data."""
    pytest.importorskip("training.run")
    from model.cli import app

    runner = CliRunner()
    train = [
        "train", "--data", f"imagefolder:{dataset / 'train'}", "--arch", "simple_cnn",
        "--arch-option", "width=8", "--arch-option", "depth=2", "--img-size", str(SIZE),
        "--epochs", "2", "--out", str(tmp_path / "runs"), "--name", "r", "--no-progress",
        "--device", "cpu", "--workers", "0",
    ]  # fmt: skip
    trained = runner.invoke(app, train)
    assert trained.exit_code == 0, trained.output
    run = tmp_path / "runs" / "r"
    args = ["export", str(run), "--out", str(tmp_path / "models"), "--name", "m"]
    exported = runner.invoke(app, [*args, "--quantize", "int8"])
    assert exported.exit_code == 0, exported.output
    report = json.loads((tmp_path / "models" / "m" / "1" / quantize.REPORT_NAME).read_text())
    assert str(run) in report["image_source"]
    assert report["accuracy_fp32"] is not None  # the run's test split has targets


def test_maxout_quantizes_to_int8_with_its_max_in_the_graph(tmp_path: Path, dataset: Path) -> None:
    # Maxout's pieces are a Split of the widened conv's output and an element-wise Max:
    # static shapes, so onnxruntime's pre-processing and QDQ quantisation take it as it is.
    checkpoint = _train_checkpoint(tmp_path, dataset, "maxout:3")
    result = export_reduced_precision(
        checkpoint, tmp_path, "colours", precision="int8", calibration=dataset
    )
    assert {"QuantizeLinear", "DequantizeLinear", "Max"} <= _op_types(result.path)
    report = json.loads((result.path.parent / quantize.REPORT_NAME).read_text())
    assert report["top1_agreement"] >= 0.99
    assert read_card(result.path).activation == "maxout:3"
