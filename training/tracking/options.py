"""The ``--track`` flags: which trackers a run logs to, parsed and checked before any work.

Importing this module stays torch- and mlflow-free (``rectifier --help``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from model.mlflow_store import DEFAULT_URI_HELP

TrackerKind = Literal["mlflow", "tensorboard"]
TRACKERS: tuple[TrackerKind, ...] = ("mlflow", "tensorboard")
TRACK_HELP = (
    f"Log the run to mlflow[=URI] (default: {DEFAULT_URI_HELP}) "
    "and/or tensorboard[=DIR] (default: RUN/tensorboard). Repeatable."
)


class TrackingError(ValueError):
    """A ``--track`` value is malformed."""


@dataclass(frozen=True)
class TrackSpec:
    kind: TrackerKind
    target: str | None = None  # MLflow URI or TensorBoard folder


@dataclass(frozen=True)
class TrackingOptions:
    specs: tuple[TrackSpec, ...] = ()
    optional: bool = False
    mlflow_parent_run_id: str | None = None  # a sweep's parent run

    def __bool__(self) -> bool:
        return bool(self.specs)


def parse_track(values: Iterable[str]) -> tuple[TrackSpec, ...]:
    """``["mlflow", "tensorboard=logs"]`` -> specs; each kind at most once."""
    specs: dict[str, TrackSpec] = {}
    for value in values:
        kind, sep, target = value.partition("=")
        if kind not in TRACKERS:
            raise TrackingError(
                f"{value!r}: choose mlflow, mlflow=URI, tensorboard or tensorboard=DIR"
            )
        if sep and not target:
            raise TrackingError(f"{value!r}: give a target after '=' or drop the '='")
        if kind in specs:
            raise TrackingError(f"{kind} is given twice; name each tracker once")
        specs[kind] = TrackSpec(kind, target or None)
    return tuple(specs.values())
