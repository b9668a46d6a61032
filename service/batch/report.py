"""Progress and the end-of-run summary of ``rectifier predict``, for every engine.

The progress bar is tqdm's, counting images and frames with their rate; it is quiet when
stderr is not a terminal. The summary gives the counts per label, the errors by kind and
the time per phase.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from service.batch.predictor import Row, error_kind


@dataclass
class Summary:
    rows: int = 0
    resumed_rows: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    interrupted: bool = False
    # When the first batch's rows arrived (seconds into the run) and how many: the rest of
    # the run is the engine's steady state, start-up (Ray's actors) excluded.
    first_batch_s: float | None = None
    first_batch_rows: int = 0

    def count(self, rows: list[Row], elapsed_s: float | None = None) -> None:
        if self.first_batch_s is None and elapsed_s is not None:
            self.first_batch_s, self.first_batch_rows = elapsed_s, len(rows)
        self.rows += len(rows)
        for row in rows:
            if row["error"]:
                self.errors[error_kind(row["error"])] += 1
            else:
                self.labels[row["label"]] += 1

    def add_seconds(self, seconds: dict[str, float]) -> None:
        for phase, value in seconds.items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + value

    @property
    def steady_rate(self) -> float | None:
        """Rows per second after the first batch (None: one batch only)."""
        if self.first_batch_s is None or self.wall_seconds <= self.first_batch_s:
            return None
        return (self.rows - self.first_batch_rows) / (self.wall_seconds - self.first_batch_s)

    def lines(self) -> list[str]:
        rate = self.rows / self.wall_seconds if self.wall_seconds > 0 else 0.0
        done = "interrupted after" if self.interrupted else "predicted"
        lines = [f"{done} {self.rows} rows in {self.wall_seconds:.1f}s ({rate:.1f} images/s)"]
        if self.resumed_rows:
            lines.append(f"resumed: {self.resumed_rows} rows were already written")
        if self.labels:
            counts = ", ".join(f"{label} {n}" for label, n in self.labels.most_common())
            lines.append(f"labels: {counts}")
        errors = ", ".join(f"{kind} {n}" for kind, n in self.errors.most_common()) or "none"
        lines.append(f"errors: {errors}")
        phases = ", ".join(f"{phase} {s:.2f}s" for phase, s in self.seconds.items())
        lines.append(f"time per phase: {phases}")
        return lines


def progress_bar(total: int | None, initial: int = 0) -> Any:
    """A tqdm bar over images, or a no-op stand-in when tqdm is absent or stderr is no TTY."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(
        total=total,
        initial=initial,
        unit="img",
        dynamic_ncols=True,
        disable=not sys.stderr.isatty(),
        file=sys.stderr,
    )


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass
