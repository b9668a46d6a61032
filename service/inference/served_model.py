"""One loaded model version, what every protocol and the shared inference path work with,
and the check that its card and graph agree."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model.card import CardError, ModelCard
from service.inference.batching import DynamicBatcher
from service.inference.trust import ServedTrust
from service.plumbing.latency import LatencyWindow


@dataclass(eq=False)
class ServedModel:
    """One loaded model version: its session, card, batcher and live latency window."""

    name: str
    version: int
    path: Path
    card: ModelCard
    session: ort.InferenceSession
    batcher: DynamicBatcher
    input_name: str
    output_names: list[str]
    load_seconds: float
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    # The card's OOD scorer and statistics (None: a card without one serves no ood_score).
    trust: ServedTrust | None = None

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.card.input_shape

    def run(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Synchronous ``session.run`` (the batcher's worker calls this)."""
        return self.session.run(self.output_names, {self.input_name: inputs})


def check_card_against_graph(card: ModelCard, session: ort.InferenceSession) -> None:
    """The card's input/output names and shapes must match the graph."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if card.input_name not in inputs:
        raise CardError(f"the card names input {card.input_name!r}; the graph has {sorted(inputs)}")
    if card.output_name not in outputs:
        raise CardError(
            f"the card names output {card.output_name!r}; the graph has {sorted(outputs)}"
        )
    shape = list(inputs[card.input_name].shape)
    expected = card.input_shape
    if len(shape) != 4 or any(
        isinstance(dim, int) and dim != want for dim, want in zip(shape[1:], expected, strict=True)
    ):
        raise CardError(
            f"the card says input (N, {', '.join(map(str, expected))}); the graph has {shape}"
        )
    out_shape = list(outputs[card.output_name].shape)
    if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != card.num_classes):
        raise CardError(
            f"the card lists {card.num_classes} labels; the graph output has shape {out_shape}"
        )
