"""The PyTorch side of trust: the graph outputs export adds, and what export fits.

``WithTrustOutputs`` returns the served probabilities, softmax(logits / T), plus the
unclipped ``logits`` and the pooled ``features`` (the input of the network's final linear
layer), after ``class_maps`` when the architecture has them. ``fit_trust`` fits, from
preprocessed training and validation images: T by NLL on the validation logits, the feature
statistics on the training features, and every scorer's threshold at 95 % TPR on validation.
The service scores with NumPy alone (``model/trust.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from model.cam_graph import WithClassMaps
from model.card import CalibrationFigures, OodDetection, OodStatistics, TemperatureScaling
from model.trust import (
    SCORERS,
    TrustStats,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    ood_scores,
    softmax,
    threshold_at_tpr,
)

log = logging.getLogger(__name__)

# Measured on the project's own OOD sets (docs/trust.md, docs/decisions.md).
DEFAULT_SCORER = "mahalanobis"
REACT_PERCENTILE = 90.0
HEAD_TOLERANCE = 1e-4  # features @ W.T + b against the logits, relative to the largest logit
BATCH = 256
# Fewer misranked validation images than this: too few to measure overconfidence by (the
# demo model misranks 1 of 400 and its NLL optimum is T = 0.18, sharpening every answer).
MIN_ERRORS = 10


class TrustFitError(ValueError):
    """The model or the images cannot give a calibration or an OOD score."""


@dataclass(frozen=True)
class TrustImages:
    """Preprocessed float32 (N, C, H, W) images with int64 labels, from a run's own splits."""

    train: np.ndarray
    train_labels: np.ndarray
    val: np.ndarray
    val_labels: np.ndarray
    dataset: str


@dataclass(frozen=True)
class FittedTrust:
    calibration: TemperatureScaling
    thresholds: dict[str, float]
    stats: TrustStats
    train_images: int
    validation_images: int

    def ood(self, statistics: OodStatistics, scorer: str = DEFAULT_SCORER) -> OodDetection:
        """The card's OOD section, once export has written the statistics file."""
        return OodDetection(
            scorer=scorer,  # type: ignore[arg-type]
            threshold=self.thresholds[scorer],
            thresholds=self.thresholds,
            react_percentile=REACT_PERCENTILE,
            statistics=statistics,
            train_images=self.train_images,
            validation_images=self.validation_images,
        )


def final_linear(model: nn.Module) -> nn.Linear:
    """The network's last ``nn.Linear``: its input is the pooled penultimate features."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TrustFitError("the network has no final linear layer to take features from")
    return linears[-1]


class WithTrustOutputs(nn.Module):
    """probabilities (softmax(logits / T)), [class_maps], logits, features."""

    def __init__(
        self,
        model: nn.Module,
        head: nn.Module,
        temperature: float = 1.0,
        class_maps: WithClassMaps | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.temperature = float(temperature)
        self._class_maps = [class_maps] if class_maps is not None else []
        self._linear = [final_linear(model)]  # a list: not registered twice

    def logits_and_features(
        self, image: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        captured: list[torch.Tensor] = []
        handle = self._linear[0].register_forward_pre_hook(
            lambda _module, inputs: captured.append(inputs[0])
        )
        try:
            if self._class_maps:
                logits, maps = self._class_maps[0].logits_and_maps(image)
            else:
                logits, maps = self.model(image), None
        finally:
            handle.remove()
        if len(captured) != 1 or captured[0].dim() != 2:
            raise TrustFitError("the final linear layer must run once on (N, features)")
        return logits, captured[0], maps

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, features, maps = self.logits_and_features(image)
        # T == 1 divides by nothing, so today's probabilities come out bit for bit.
        scaled = logits if self.temperature == 1.0 else logits / self.temperature
        probabilities = self.head(scaled)
        extra = () if maps is None else (maps,)
        return (probabilities, *extra, logits, features)


def check_linear_head(wrapper: WithTrustOutputs, example: torch.Tensor) -> None:
    """features @ W.T + b must give the logits, or ReAct's recomputed logits mean nothing."""
    linear = wrapper._linear[0]
    with torch.no_grad():
        logits, features, _ = wrapper.logits_and_features(example)
        again = linear(features)
    scale = max(1.0, float(logits.abs().max()))
    error = float((again - logits).abs().max()) / scale
    if error > HEAD_TOLERANCE:
        raise TrustFitError(
            f"the final linear layer applied to its input does not give the logits (relative "
            f"error {error:.3g}): something follows it"
        )


@torch.no_grad()
def collect(wrapper: WithTrustOutputs, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and features of ``images``, in batches."""
    logits, features = [], []
    for start in range(0, len(images), BATCH):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + BATCH]))
        z, f, _ = wrapper.logits_and_features(batch)
        logits.append(z.double().numpy())
        features.append(f.double().numpy())
    return np.concatenate(logits), np.concatenate(features)


def calibration_figures(
    logits: np.ndarray, labels: np.ndarray, temperature: float
) -> CalibrationFigures:
    p = softmax(logits, temperature)
    return CalibrationFigures(
        ece=expected_calibration_error(p, labels),
        nll=negative_log_likelihood(p, labels),
        brier=brier_score(p, labels),
    )


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> tuple[float, bool]:
    """T minimising the validation NLL, and whether the split is separable (T kept >= 1).

    Golden-section search over log T in [0.05, 20]: the NLL of temperature scaling is
    unimodal in T when at least one image is ranked wrong. When every image is ranked right,
    the NLL falls all the way to T -> 0, which would sharpen every answer; with a handful of
    errors (fewer than ``MIN_ERRORS``) it falls nearly as far, fitted to those few images.
    Either way the split is called separable and T is the larger of 1 and the fitted value,
    so calibration never makes such a model more confident than its raw softmax.
    """
    if len(labels) == 0:
        raise TrustFitError("no validation images to fit the temperature on")
    errors = int((logits.argmax(axis=1) != labels).sum())
    separable = errors < MIN_ERRORS

    def nll(log_t: float) -> float:
        return negative_log_likelihood(softmax(logits, float(np.exp(log_t))), labels)

    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5.0) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(b)
    temperature = float(np.exp((low + high) / 2))
    if separable:
        temperature = max(temperature, 1.0)
    return temperature, separable


def fit_stats(
    features: np.ndarray,
    labels: np.ndarray,
    linear: nn.Linear,
    *,
    num_classes: int,
    percentile: float = REACT_PERCENTILE,
    ridge: float | None = None,
) -> TrustStats:
    """Class means, the shared covariance's inverse (mean of the centred outer products plus
    a ridge), ReAct's clip value and the final layer's weights.

    ``ridge`` None: 1e-6 times the covariance's mean diagonal, so the inverse exists when
    some feature never varies (a dead ReLU unit).
    """
    present = np.unique(labels)
    if len(present) == 0:
        raise TrustFitError("no training images to fit the class means on")
    if len(present) < num_classes:
        missing = sorted(set(range(num_classes)) - set(present.tolist()))
        log.warning("no training images of class(es) %s: their means are left out", missing)
    means = np.stack([features[labels == c].mean(axis=0) for c in present])
    centred = features - means[np.searchsorted(present, labels)]
    covariance = centred.T @ centred / len(features)
    if ridge is None:
        ridge = 1e-6 * max(float(np.trace(covariance)) / len(covariance), 1e-12)
    precision = np.linalg.inv(covariance + ridge * np.eye(len(covariance)))
    bias = linear.bias.detach() if linear.bias is not None else torch.zeros(num_classes)
    return TrustStats(
        class_means=means,
        precision=precision,
        clip=float(np.percentile(features, percentile)),
        weight=linear.weight.detach().double().numpy(),
        bias=bias.double().numpy(),
    )


def fit_trust(
    model: nn.Module, head: nn.Module, images: TrustImages, *, num_classes: int
) -> FittedTrust:
    """Fit T, the statistics and every scorer's threshold from ``images``."""
    if len(images.train) == 0 or len(images.val) == 0:
        raise TrustFitError("trust needs training and validation images; a split is empty")
    wrapper = WithTrustOutputs(model.eval(), head).eval()
    check_linear_head(wrapper, torch.from_numpy(images.val[:2]))
    _, train_features = collect(wrapper, images.train)
    val_logits, val_features = collect(wrapper, images.val)
    temperature, separable = fit_temperature(val_logits, images.val_labels)
    if separable:
        log.warning(
            "the validation split is (nearly) separated, fewer than %d images misranked: NLL "
            "falls as T -> 0; T kept at %.3g",
            MIN_ERRORS,
            temperature,
        )
    calibration = TemperatureScaling(
        temperature=temperature,
        images=len(images.val),
        separable=separable,
        before=calibration_figures(val_logits, images.val_labels, 1.0),
        after=calibration_figures(val_logits, images.val_labels, temperature),
    )
    stats = fit_stats(
        train_features, images.train_labels, final_linear(model), num_classes=num_classes
    )
    thresholds: dict[str, float] = {
        name: threshold_at_tpr(ood_scores(name, val_logits, val_features, stats))
        for name in SCORERS
    }
    return FittedTrust(calibration, thresholds, stats, len(images.train), len(images.val))
