"""How much to believe a prediction, in NumPy alone: calibrated probabilities and
out-of-distribution scores from the graph's ``logits`` and ``features`` outputs.

Used by the service (no torch there), by export's fitting (``training/trust_fit.py``) and by
``rectifier evaluate-ood``. Every score is oriented the same way: higher means less like the
training data; an image is in distribution when its score is at or under the card's
threshold.

Scores (docs/trust.md):

- ``max_probability``: minus the largest softmax probability (Hendrycks & Gimpel 2017).
- ``energy``: minus log-sum-exp of the logits (Liu et al. 2020).
- ``react_energy``: the energy of the logits recomputed from the pooled features clipped at
  their training percentile (ReAct, Sun, Guo & Li 2021); the clipping feeds only the score,
  never the served probabilities.
- ``mahalanobis``: the smallest squared Mahalanobis distance of the pooled features to a
  class mean, with one covariance shared by all classes (Lee et al. 2018).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

import numpy as np

Scorer = Literal["max_probability", "energy", "react_energy", "mahalanobis"]
SCORERS: tuple[Scorer, ...] = get_args(Scorer)
# Scores that need the statistics file (the others need the logits alone).
FEATURE_SCORERS: frozenset[str] = frozenset({"react_energy", "mahalanobis"})
STATS_FILE = "ood_stats.npz"
ECE_BINS = 15
TPR = 0.95


class TrustError(ValueError):
    """Statistics that are missing, unreadable or do not fit the model."""


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) over the last axis, in float64, stable."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature != 1.0:
        z = z / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def logsumexp(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=-1, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(axis=-1, keepdims=True)))[..., 0]


@dataclass(frozen=True)
class TrustStats:
    """What the feature scores were fitted to: written by export, read at model load.

    ``precision`` is the inverse of the shared covariance ``sum_c sum_i (f_i - mu_c)(f_i -
    mu_c)^T / N + ridge * I``; ``weight``/``bias`` are the final linear layer, so ReAct can
    recompute the logits from clipped features.
    """

    class_means: np.ndarray  # (classes with training images, features)
    precision: np.ndarray  # (features, features)
    clip: float  # ReAct's clipping value: the training features' percentile
    weight: np.ndarray  # (classes, features)
    bias: np.ndarray  # (classes,)

    @cached_property
    def mean_terms(self) -> np.ndarray:
        """mu_c' P mu_c per class, for ``mahalanobis_score``."""
        return np.einsum("cd,de,ce->c", self.class_means, self.precision, self.class_means)

    @property
    def num_features(self) -> int:
        return int(self.class_means.shape[1])

    def to_bytes(self) -> bytes:
        """The statistics as an .npz file's bytes (export hashes them into the card)."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            class_means=self.class_means.astype(np.float64),
            precision=self.precision.astype(np.float64),
            clip=np.float64(self.clip),
            weight=self.weight.astype(np.float64),
            bias=self.bias.astype(np.float64),
        )
        return buffer.getvalue()

    @classmethod
    def load(cls, path: Path, sha256: str | None = None) -> TrustStats:
        """Read statistics, checking their digest against the card's; errors name the file."""
        if not path.is_file():
            raise TrustError(f"the card's OOD statistics {path} are missing")
        if sha256 is not None and file_sha256(path) != sha256:
            raise TrustError(
                f"{path} does not match the card (sha256 differs): it belongs to another export"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                stats = cls(
                    data["class_means"],
                    data["precision"],
                    float(data["clip"]),
                    data["weight"],
                    data["bias"],
                )
        except (OSError, KeyError, ValueError) as exc:
            raise TrustError(f"{path} is not a readable OOD statistics file: {exc}") from exc
        d = stats.num_features
        if stats.precision.shape != (d, d) or stats.weight.shape[1:] != (d,):
            raise TrustError(f"{path} holds statistics of inconsistent shapes")
        return stats


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def max_probability_score(logits: np.ndarray) -> np.ndarray:
    return -softmax(logits).max(axis=-1)


def energy_score(logits: np.ndarray) -> np.ndarray:
    return -logsumexp(logits)


def react_energy_score(features: np.ndarray, stats: TrustStats) -> np.ndarray:
    clipped = np.minimum(np.asarray(features, dtype=np.float64), stats.clip)
    return -logsumexp(clipped @ stats.weight.T + stats.bias)


def mahalanobis_score(features: np.ndarray, stats: TrustStats) -> np.ndarray:
    # (f - mu)' P (f - mu) = f'Pf - 2 f'P mu + mu'P mu: two matrix products per batch
    # instead of one (features x features) product per image and class.
    f = np.asarray(features, dtype=np.float64)
    projected = f @ stats.precision
    distances = (
        (projected * f).sum(axis=1, keepdims=True)
        - 2.0 * projected @ stats.class_means.T
        + stats.mean_terms[None, :]
    )
    return np.maximum(distances, 0.0).min(axis=1)


def ood_scores(
    scorer: str, logits: np.ndarray, features: np.ndarray | None, stats: TrustStats | None
) -> np.ndarray:
    """One score per image (float64 (N,)), higher = less like the training data."""
    if scorer == "max_probability":
        return max_probability_score(logits)
    if scorer == "energy":
        return energy_score(logits)
    if scorer not in FEATURE_SCORERS:
        raise TrustError(f"unknown OOD scorer {scorer!r}; valid choices: {', '.join(SCORERS)}")
    if features is None or stats is None:
        raise TrustError(f"{scorer} needs the pooled features and the fitted statistics")
    if scorer == "react_energy":
        return react_energy_score(features, stats)
    return mahalanobis_score(features, stats)


def threshold_at_tpr(in_scores: np.ndarray, tpr: float = TPR) -> float:
    """The score at or under which ``tpr`` of the in-distribution images fall."""
    if len(in_scores) == 0:
        raise TrustError("no in-distribution images to set the threshold on")
    return float(np.quantile(np.asarray(in_scores, dtype=np.float64), tpr, method="higher"))


# --- calibration figures ---------------------------------------------------------------------


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Top-label ECE with ``bins`` equal-width confidence bins (Guo et al. 2017)."""
    p = np.asarray(probabilities, dtype=np.float64)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin b holds confidences in (edges[b], edges[b + 1]]: the convention torchmetrics uses.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.mean() * abs(confidence[members].mean() - correct[members].mean())
    return float(total)


def reliability_bins(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin: mean confidence, accuracy and count (NaN where a bin is empty)."""
    p = np.asarray(probabilities, dtype=np.float64)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        conf = np.bincount(which, confidence, bins) / counts
        acc = np.bincount(which, correct, bins) / counts
    return conf, acc, counts


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(p, 1e-300, None)).mean())


def brier_score(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean over images of the squared distance to the one-hot target (summed over classes)."""
    p = np.asarray(probabilities, dtype=np.float64)
    onehot = np.eye(p.shape[1])[labels]
    return float(((p - onehot) ** 2).sum(axis=1).mean())


# --- threshold-free detection figures ---------------------------------------------------------


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """P(out score > in score), ties counting half: the Mann-Whitney statistic."""
    scores = np.concatenate([in_scores, out_scores])
    ranks = _average_ranks(scores)
    n_in, n_out = len(in_scores), len(out_scores)
    rank_sum = ranks[n_in:].sum()
    return float((rank_sum - n_out * (n_out + 1) / 2) / (n_in * n_out))


def aupr(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Average precision with the out-of-distribution images as positives."""
    scores = np.concatenate([in_scores, out_scores])
    positive = np.concatenate([np.zeros(len(in_scores)), np.ones(len(out_scores))])
    order = np.argsort(-scores, kind="stable")
    hits = positive[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / max(hits.sum(), 1))


def fpr_at_tpr(in_scores: np.ndarray, out_scores: np.ndarray, tpr: float = TPR) -> float:
    """The share of out-of-distribution images accepted at the threshold keeping ``tpr`` of
    the in-distribution ones (FPR95)."""
    return float((np.asarray(out_scores) <= threshold_at_tpr(in_scores, tpr)).mean())


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2  # 1-based average rank
    return ranks
