"""What every tracker implements, and what it is told about a run before its first epoch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from training.tracking.options import TrackerKind

RunStatus = Literal["FINISHED", "FAILED", "KILLED"]


@dataclass(frozen=True)
class RunDescription:
    """What a tracker records about a run before its first epoch."""

    name: str
    run_dir: Path
    params: dict[str, str]
    tags: dict[str, str]


class Tracker(Protocol):
    kind: TrackerKind

    def connect(self) -> None: ...
    def start(self, run: RunDescription) -> None: ...
    def log_epoch(
        self, step: int, scalars: dict[str, float], activations: dict[str, np.ndarray]
    ) -> None: ...
    def log_final(self, step: int, scalars: dict[str, float], files: list[Path]) -> None: ...
    def end(self, status: RunStatus) -> None: ...
