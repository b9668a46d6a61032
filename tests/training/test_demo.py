"""The committed demo model: its card matches the code's schema, and it recognises fresh
synthetic signs it has never seen (another seed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from model.card import read_card
from model.decoding import load_and_preprocess
from model.preprocess import preprocess_image
from model.trust import TrustStats, ood_scores
from training.datasets.synthetic_signs import CLASS_NAMES, image_rng, render_sign
from training.demo import EXAMPLES, demo_config

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "demo" / "1" / "model.onnx"
FRESH_SEED = 424242  # the demo trains on seed 0


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(DEMO), providers=["CPUExecutionProvider"])


def test_committed_card_validates_against_the_current_schema() -> None:
    card = read_card(DEMO)
    assert card.name == "demo" and card.version == 1 and card.task == "multiclass"
    assert set(card.labels) == set(CLASS_NAMES)
    assert (card.architecture, card.activation) == ("simple_cnn", "relu")
    assert card.preprocessing.crop_size == 64
    assert card.export is not None and card.metrics["test_acc"] >= 0.97
    assert DEMO.stat().st_size < 2 * 1024 * 1024


def test_fresh_synthetic_test_set_at_95_percent(session: ort.InferenceSession) -> None:
    card = read_card(DEMO)
    images, targets = [], []
    for class_index, name in enumerate(CLASS_NAMES):
        for index in range(25):
            rng = image_rng(FRESH_SEED, "test", class_index, index)
            images.append(preprocess_image(render_sign(name, rng, 64), card.preprocessing))
            targets.append(card.labels.index(name))
    (probabilities,) = session.run([card.output_name], {card.input_name: np.stack(images)})
    accuracy = float((probabilities.argmax(axis=1) == np.array(targets)).mean())
    assert accuracy >= 0.95, accuracy


@pytest.mark.parametrize(("label", "file_name"), EXAMPLES)
def test_sample_images_are_classified_as_named(
    session: ort.InferenceSession, label: str, file_name: str
) -> None:
    card = read_card(DEMO)
    tensor = load_and_preprocess(str(ROOT / "examples" / "images" / file_name), card.preprocessing)
    (probabilities,) = session.run([card.output_name], {card.input_name: tensor[None]})
    assert card.labels[int(probabilities.argmax())] == label


def test_demo_recipe_is_simple_cnn_relu_at_64px(tmp_path: Path) -> None:
    config = demo_config(tmp_path, tmp_path)
    assert (config.arch, config.activation, config.img_size) == ("simple_cnn", "relu", 64)
    assert config.data.startswith("synthetic-signs") and config.seed == 0


def _smooth_field(seed: int) -> Image.Image:
    """A photograph stand-in: a smooth random colour field, nothing like a sign."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((96, 96), Image.Resampling.BICUBIC)


def test_committed_demo_carries_calibration_and_an_ood_score(
    session: ort.InferenceSession,
) -> None:
    card = read_card(DEMO)
    trust = card.trust
    assert trust is not None and trust.ood is not None and trust.ood.statistics is not None
    # Calibration never makes the demo more confident than its raw softmax (T >= 1).
    assert trust.calibration.temperature >= 1.0
    stats = TrustStats.load(DEMO.parent / trust.ood.statistics.file, trust.ood.statistics.sha256)
    outputs = {o.name: o.shape for o in session.get_outputs()}
    assert outputs[trust.features_output][1] == stats.num_features


def test_demo_flags_non_signs_and_accepts_fresh_signs(session: ort.InferenceSession) -> None:
    card = read_card(DEMO)
    assert card.trust is not None and card.trust.ood is not None
    ood, statistics = card.trust.ood, card.trust.ood.statistics
    assert statistics is not None
    stats = TrustStats.load(DEMO.parent / statistics.file, statistics.sha256)
    names = [card.trust.logits_output, card.trust.features_output]

    def scores(images: list[np.ndarray]) -> np.ndarray:
        logits, features = session.run(names, {card.input_name: np.stack(images)})
        return ood_scores(ood.scorer, logits, features, stats)

    signs = [
        preprocess_image(
            render_sign(name, image_rng(FRESH_SEED, "test", c, i), 64), card.preprocessing
        )
        for c, name in enumerate(CLASS_NAMES)
        for i in range(10)
    ]
    assert (scores(signs) <= ood.threshold).mean() >= 0.9
    others = [preprocess_image(_smooth_field(seed), card.preprocessing) for seed in range(10)]
    assert (scores(others) > ood.threshold).all()
