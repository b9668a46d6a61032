from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from model.activations import ACTIVATIONS
from model.architectures import ARCHITECTURES
from model.card import CARD_METADATA_KEY, read_card
from model.checkpoint import load_checkpoint
from model.export import ExportError, export_checkpoint
from tests.helpers.models import make_checkpoint

# Per-activation parity figures are collected here and printed by the last test, so the
# suite's output shows them (and the closing note can quote them).
PARITY: dict[str, float] = {}


def _export(tmp_path: Path, **kwargs: object) -> tuple[Path, float]:
    ckpt = make_checkpoint(tmp_path / "model.pt", resize_size=32, crop_size=32, **kwargs)
    result = export_checkpoint(ckpt, tmp_path / "models", "m")
    return result.path, result.parity.max_abs_diff


@pytest.mark.heavy
@pytest.mark.parametrize("architecture", ["simple_cnn", "resnet18"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_exports_with_parity(
    tmp_path: Path, architecture: str, activation: str
) -> None:
    path, diff = _export(tmp_path, architecture=architecture, activation=activation)
    assert diff <= 1e-4
    PARITY[f"{architecture}/{activation}"] = diff
    assert read_card(path).activation == activation


@pytest.mark.heavy
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("activation", ["relu", "prelu"])
@pytest.mark.parametrize("color_mode", ["L", "RGB"])
def test_every_architecture_exports_with_parity(
    tmp_path: Path, architecture: str, activation: str, color_mode: str
) -> None:
    path, diff = _export(
        tmp_path, architecture=architecture, activation=activation, color_mode=color_mode
    )
    assert diff <= 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [1 if color_mode == "L" else 3, 32, 32]
    # Global-pool + linear heads carry class-activation maps; the others say they do not.
    maps = read_card(path).class_activation_maps
    outputs = [o.name for o in session.get_outputs()]
    if ARCHITECTURES[architecture].cam is None:
        assert maps is None and outputs == ["probabilities"]
    else:
        assert maps is not None and outputs == ["probabilities", "class_maps"]
        x = np.zeros((2, 1 if color_mode == "L" else 3, 32, 32), np.float32)
        assert session.run(["class_maps"], {"image": x})[0].shape == (2, 3, *maps.grid)


def test_batch_axis_is_dynamic_and_outputs_match_torch(tmp_path: Path) -> None:
    path, _ = _export(tmp_path)
    ckpt = load_checkpoint(tmp_path / "model.pt")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert isinstance(session.get_inputs()[0].shape[0], str)
    for batch in (1, 3, 17):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
        (probs,) = session.run(["probabilities"], {"image": x})
        with torch.no_grad():
            expected = torch.softmax(ckpt.model(torch.from_numpy(x)), 1).numpy()
        np.testing.assert_allclose(probs, expected, atol=1e-5)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_card_reads_back_and_records_its_source(tmp_path: Path) -> None:
    path, diff = _export(tmp_path, labels=("a", "b"), color_mode="L")
    card = read_card(path)
    assert (card.name, card.version, card.labels, card.input_shape) == (
        "m",
        1,
        ("a", "b"),
        (1, 32, 32),
    )
    assert card.export is not None
    assert card.export.parity_max_abs_diff == pytest.approx(diff)
    assert card.export.source_checkpoint_sha256 == load_checkpoint(tmp_path / "model.pt").sha256
    keys = [p.key for p in onnx.load(str(path)).metadata_props]
    assert keys.count(CARD_METADATA_KEY) == 1


def test_multilabel_models_end_in_a_sigmoid(tmp_path: Path) -> None:
    path, _ = _export(tmp_path, task="multilabel", labels=("a", "b", "c"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (probs,) = session.run(["probabilities"], {"image": np.zeros((2, 3, 32, 32), np.float32)})
    assert not np.allclose(probs.sum(1), 1.0)
    assert ((probs > 0) & (probs < 1)).all()


def test_versions_increment_and_are_never_overwritten(tmp_path: Path) -> None:
    ckpt = make_checkpoint(tmp_path / "model.pt", resize_size=32, crop_size=32)
    first = export_checkpoint(ckpt, tmp_path / "models", "m")
    second = export_checkpoint(ckpt, tmp_path / "models", "m")
    assert (first.card.version, second.card.version) == (1, 2)
    # Readable by a server running as another user (the non-root container).
    assert first.path.stat().st_mode & 0o777 == 0o644
    with pytest.raises(ExportError, match="exists already"):
        export_checkpoint(ckpt, tmp_path / "models", "m", version=1)


def test_export_refuses_a_diverged_model_and_writes_nothing(tmp_path: Path) -> None:
    ckpt = load_checkpoint(make_checkpoint(tmp_path / "model.pt", resize_size=32, crop_size=32))
    with torch.no_grad():
        next(ckpt.model.parameters()).fill_(float("nan"))
    with pytest.raises(ExportError, match=r"NaN or Inf.*training diverged"):
        export_checkpoint(ckpt, tmp_path / "models", "m")
    assert not (tmp_path / "models" / "m" / "1").exists()


def test_parity_figures_summary(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table holds a figure for every architecture/activation the run exported, each
    within the export's tolerance."""
    selected = {
        "{architecture}/{activation}".format(**item.callspec.params)
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_every_activation_exports_with_parity"
    }
    if not selected:
        pytest.skip("run with the parity tests to get the summary")
    with capsys.disabled():
        print("\nONNX parity, max abs diff of probabilities:")
        for key, diff in sorted(PARITY.items()):
            print(f"  {key:28s} {diff:.2e}")
    assert set(PARITY) == selected, f"no parity figure for {sorted(selected - set(PARITY))}"
    assert all(0.0 <= diff <= 1e-4 for diff in PARITY.values()), PARITY
