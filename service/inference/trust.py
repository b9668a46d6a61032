"""A served model's trust: its OOD scorer, threshold and statistics, loaded with the model.

The graph's ``probabilities`` are already the calibrated ones (softmax(logits / T), baked in
at export); what the service adds is the OOD score, computed with NumPy alone
(``model/trust.py``) from the graph's ``logits`` and ``features`` outputs. A card without a
``trust.ood`` section serves as before: no score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.card import CardError, ModelCard
from model.layout import beside_model
from model.trust import TrustError, TrustStats, ood_scores


@dataclass(frozen=True)
class ServedTrust:
    scorer: str
    threshold: float
    temperature: float
    logits_output: str
    features_output: str
    stats: TrustStats | None

    def score(self, logits: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """float64 (N,): higher = less like the training data."""
        return ood_scores(self.scorer, logits, features, self.stats)

    def inside(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) <= self.threshold


def load_trust(card: ModelCard, model_path: Path, output_names: list[str]) -> ServedTrust | None:
    """The card's OOD scorer with its statistics, checked against the graph and the file.

    A missing or mismatched statistics file, or a graph without the outputs the card names,
    is a load error naming what is wrong.
    """
    trust = card.trust
    if trust is None or trust.ood is None:
        return None
    missing = [n for n in (trust.logits_output, trust.features_output) if n not in output_names]
    if missing:
        raise CardError(
            f"the card's trust section names output(s) {missing}; the graph has {output_names}"
        )
    stats = None
    if trust.ood.statistics is not None:
        try:
            path = beside_model(model_path, trust.ood.statistics.file)
            stats = TrustStats.load(path, trust.ood.statistics.sha256)
        except (TrustError, ValueError) as exc:
            raise CardError(str(exc)) from exc
    return ServedTrust(
        scorer=trust.ood.scorer,
        threshold=trust.ood.threshold,
        temperature=trust.calibration.temperature,
        logits_output=trust.logits_output,
        features_output=trust.features_output,
        stats=stats,
    )
