"""Calibration and OOD scores (model/trust.py, model/trust_fit.py) against libraries no one
here wrote: pytorch-ood's detectors and torchmetrics' calibration error and AUROC."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from pytorch_ood.detector import EnergyBased, Mahalanobis, MaxSoftmax, ReAct
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryAveragePrecision,
    MulticlassCalibrationError,
)

from model.activations import ACTIVATIONS
from model.architectures import ARCHITECTURES
from model.card import CardError, card_from_json, read_card
from model.checkpoint import load_checkpoint
from model.export import WithProbabilities, export_checkpoint
from model.trust import (
    SCORERS,
    TrustError,
    TrustStats,
    aupr,
    auroc,
    expected_calibration_error,
    fpr_at_tpr,
    ood_scores,
    softmax,
    threshold_at_tpr,
)
from model.trust_fit import (
    TrustImages,
    WithTrustOutputs,
    collect,
    final_linear,
    fit_stats,
    fit_temperature,
)
from tests.helpers.models import make_checkpoint

LABELS = ("cat", "dog", "bird")


def _images(rng: np.random.Generator, n: int, channels: int = 3, size: int = 32) -> np.ndarray:
    return rng.normal(size=(n, channels, size, size)).astype(np.float32)


def _trust_images(channels: int = 3, train: int = 48, val: int = 24) -> TrustImages:
    rng = np.random.default_rng(0)
    return TrustImages(
        _images(rng, train, channels),
        np.arange(train) % 3,
        _images(rng, val, channels),
        np.arange(val) % 3,
        "synthetic-test",
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A simple_cnn's features and logits on training and test images, and our statistics."""
    path = make_checkpoint(tmp_path_factory.mktemp("trust") / "m.pt", labels=LABELS)
    model = load_checkpoint(path).model.eval()
    wrapper = WithTrustOutputs(model, torch.nn.Softmax(dim=1)).eval()
    rng = np.random.default_rng(1)
    _, train_features = collect(wrapper, _images(rng, 120))
    test_logits, test_features = collect(wrapper, _images(rng, 40) * 1.5)
    labels = np.arange(120) % 3
    return model, train_features, labels, test_logits, test_features


def test_energy_and_max_probability_equal_pytorch_ood(fitted: tuple) -> None:
    _, _, _, logits, _ = fitted
    z = torch.from_numpy(logits)
    np.testing.assert_allclose(
        ood_scores("energy", logits, None, None), EnergyBased.score(z).numpy(), atol=1e-4
    )
    np.testing.assert_allclose(
        ood_scores("max_probability", logits, None, None),
        MaxSoftmax(lambda x: x)(z).numpy(),
        atol=1e-4,
    )


def test_react_energy_equals_pytorch_ood(fitted: tuple) -> None:
    model, train_features, labels, _, features = fitted
    linear = final_linear(model)
    ours = fit_stats(train_features, labels, linear, num_classes=3)
    detector = ReAct(
        backbone=lambda x: x, head=lambda f: linear(f.float()).double(), percentile=0.9
    )
    detector.fit_feature_maps(torch.from_numpy(train_features), torch.from_numpy(labels))
    assert ours.clip == pytest.approx(detector.threshold, rel=1e-9)
    theirs = detector.predict_feature_maps(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(ood_scores("react_energy", None, features, ours), theirs, atol=1e-4)


def test_mahalanobis_equals_pytorch_ood_after_rescaling(fitted: tuple) -> None:
    """pytorch-ood's covariance is the *sum* of the centred outer products plus 1e-6 I and
    its score is -max_c(-d_c / 2); ours is the *mean* (sum / N) plus a ridge, and the score
    min_c d_c. With our ridge set to 1e-6 / N the two covariances differ by the factor N
    exactly, so ours == 2 N x theirs."""
    model, train_features, labels, _, features = fitted
    # pytorch-ood keeps its means and covariance in float32: both sides see float32 features.
    train_features = train_features.astype(np.float32)
    features = features.astype(np.float32)
    n = len(train_features)
    ours = fit_stats(
        train_features.astype(np.float64),
        labels,
        final_linear(model),
        num_classes=3,
        ridge=1e-6 / n,
    )
    detector = Mahalanobis(encoder=None)
    detector.fit_features(torch.from_numpy(train_features), torch.from_numpy(labels))
    theirs = detector.predict_features(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(
        ood_scores("mahalanobis", None, features, ours) / (2 * n), theirs, rtol=1e-4
    )


@pytest.mark.parametrize("bins", [15, 10])
def test_ece_equals_torchmetrics(bins: int) -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(500, 5)) * 3
    labels = rng.integers(0, 5, 500)
    p = softmax(logits)
    metric = MulticlassCalibrationError(num_classes=5, n_bins=bins, norm="l1")
    theirs = float(metric(torch.from_numpy(p).float(), torch.from_numpy(labels)))
    assert expected_calibration_error(p.astype(np.float32), labels, bins) == pytest.approx(
        theirs, abs=1e-6
    )


def test_auroc_and_aupr_equal_torchmetrics() -> None:
    rng = np.random.default_rng(3)
    inside, outside = rng.normal(size=300), rng.normal(0.8, size=200)
    outside[:20] = inside[:20]  # ties count half
    scores = torch.from_numpy(np.concatenate([inside, outside]))
    target = torch.cat([torch.zeros(300), torch.ones(200)]).long()
    assert auroc(inside, outside) == pytest.approx(float(BinaryAUROC()(scores, target)), abs=1e-6)
    assert aupr(inside, outside) == pytest.approx(
        float(BinaryAveragePrecision()(scores, target)), abs=1e-4
    )
    threshold = threshold_at_tpr(inside)
    assert (inside <= threshold).mean() >= 0.95
    assert 0 <= fpr_at_tpr(inside, outside) <= 1


def test_temperature_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(4000, 4)) * 4
    labels = np.array([rng.choice(4, p=row) for row in softmax(logits, 2.0)])
    temperature, separable = fit_temperature(logits, labels)
    assert not separable
    assert temperature == pytest.approx(2.0, rel=0.1)


def test_a_separable_split_keeps_the_temperature_at_or_above_one() -> None:
    labels = np.arange(60) % 3
    logits = np.eye(3)[labels] * 5.0  # every image ranked right: NLL falls as T -> 0
    temperature, separable = fit_temperature(logits, labels)
    assert separable and temperature >= 1.0


def test_temperature_one_reproduces_todays_probabilities_exactly(tmp_path: Path) -> None:
    model = load_checkpoint(make_checkpoint(tmp_path / "m.pt")).model.eval()
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        before = WithProbabilities(model, "multiclass")(x)
        after = WithTrustOutputs(model, torch.nn.Softmax(dim=1), 1.0)(x)[0]
    assert torch.equal(before, after)


def test_exported_probabilities_are_softmax_of_logits_over_t(tmp_path: Path) -> None:
    ckpt = make_checkpoint(tmp_path / "m.pt", resize_size=32, crop_size=32)
    plain = export_checkpoint(ckpt, tmp_path / "models", "plain")
    result = export_checkpoint(ckpt, tmp_path / "models", "trusted", trust=_trust_images())
    trust = result.card.trust
    assert trust is not None and trust.ood is not None and trust.ood.statistics is not None
    x = _images(np.random.default_rng(5), 7)
    before = ort.InferenceSession(str(plain.path)).run(["probabilities"], {"image": x})[0]
    probs, logits = ort.InferenceSession(str(result.path)).run(
        ["probabilities", "logits"], {"image": x}
    )
    t = trust.calibration.temperature
    np.testing.assert_allclose(probs, softmax(logits, t), atol=1e-6)
    if t == 1.0:
        np.testing.assert_array_equal(probs, before)
    else:
        np.testing.assert_allclose(softmax(logits), before, atol=1e-6)
    assert set(trust.ood.thresholds) == set(SCORERS)


def _check_trusted_export(
    tmp_path: Path, architecture: str, activation: str, channels: int
) -> None:
    ckpt = make_checkpoint(
        tmp_path / "m.pt",
        architecture=architecture,
        activation=activation,
        color_mode="L" if channels == 1 else "RGB",
        resize_size=32,
        crop_size=32,
    )
    result = export_checkpoint(ckpt, tmp_path / "models", "m", trust=_trust_images(channels))
    assert result.parity.trust_max_rel_diff is not None
    assert result.parity.trust_max_rel_diff <= 1e-4
    card = read_card(result.path)
    assert card.trust is not None and card.trust.ood is not None
    statistics = card.trust.ood.statistics
    assert statistics is not None
    stats = TrustStats.load(result.path.parent / statistics.file, statistics.sha256)
    # The ONNX outputs scored in NumPy equal the PyTorch features scored in NumPy.
    x = _images(np.random.default_rng(6), 5, channels)
    logits, features = ort.InferenceSession(str(result.path)).run(
        ["logits", "features"], {"image": x}
    )
    model = load_checkpoint(ckpt).model.eval()
    torch_logits, torch_features = collect(WithTrustOutputs(model, torch.nn.Softmax(dim=1)), x)
    for scorer in SCORERS:
        ours = ood_scores(scorer, logits, features, stats)
        reference = ood_scores(scorer, torch_logits, torch_features, stats)
        scale = max(1.0, float(np.abs(reference).max()))
        assert np.abs(ours - reference).max() / scale <= 1e-4, scorer


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_on_simple_cnn_exports_trust(tmp_path: Path, activation: str) -> None:
    _check_trusted_export(tmp_path, "simple_cnn", activation, 3)


# resnet-sized exports are the heavy tier (pyproject.toml); simple_cnn stays in test-fast.
@pytest.mark.parametrize(
    "architecture",
    [
        pytest.param(a, marks=() if a == "simple_cnn" else pytest.mark.heavy)
        for a in sorted(ARCHITECTURES)
    ],
)
def test_every_architecture_with_relu_exports_trust(tmp_path: Path, architecture: str) -> None:
    _check_trusted_export(tmp_path, architecture, "relu", 1)


def test_a_threshold_without_statistics_is_a_card_error(tmp_path: Path) -> None:
    ckpt = make_checkpoint(tmp_path / "m.pt", resize_size=32, crop_size=32)
    card = export_checkpoint(ckpt, tmp_path / "models", "m", trust=_trust_images()).card
    assert card_from_json(card.to_json()) == card
    data = card.model_dump(mode="json")
    data["trust"]["ood"]["statistics"] = None
    with pytest.raises(CardError, match="needs fitted statistics"):
        card_from_json(json.dumps(data))


def test_missing_or_mismatched_statistics_name_the_file(tmp_path: Path) -> None:
    ckpt = make_checkpoint(tmp_path / "m.pt", resize_size=32, crop_size=32)
    result = export_checkpoint(ckpt, tmp_path / "models", "m", trust=_trust_images())
    assert result.card.trust is not None and result.card.trust.ood is not None
    statistics = result.card.trust.ood.statistics
    assert statistics is not None
    path = result.path.parent / statistics.file
    with pytest.raises(TrustError, match="sha256 differs"):
        TrustStats.load(path, "0" * 64)
    path.unlink()
    with pytest.raises(TrustError, match=str(path)):
        TrustStats.load(path, statistics.sha256)


def test_cards_without_trust_still_read(tmp_path: Path) -> None:
    ckpt = make_checkpoint(tmp_path / "m.pt", resize_size=32, crop_size=32)
    result = export_checkpoint(ckpt, tmp_path / "models", "m")
    assert result.card.trust is None
    outputs = [o.name for o in ort.InferenceSession(str(result.path)).get_outputs()]
    assert outputs == ["probabilities", "class_maps"]
    assert not (result.path.parent / "ood_stats.npz").exists()
