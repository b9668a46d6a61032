"""``SOURCE...`` arguments -> work items: image or DICOM files, and video files.

A source is a file, a folder (every file under it, recursively, hidden ones skipped), a
glob (``**`` recurses), or a ``.txt``/``.csv``/``.lst`` file listing paths (one a line; a
CSV's ``path`` column, else its first; relative entries are relative to the list). A
listed path that is missing becomes a row with its error, not a failure; a SOURCE that
matches nothing fails before any work. Paths are made absolute, so Ray workers read the
files where they are, whatever their working directory.
"""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v"})
LIST_SUFFIXES = frozenset({".txt", ".csv", ".lst"})
_GLOB_CHARS = frozenset("*?[")


class SourceError(ValueError):
    """A SOURCE argument that names nothing to predict."""


@dataclass(frozen=True)
class WorkItem:
    """One file to predict. ``frame``: a frame asked for (None: the card's frame policy);
    ``video``: decode it with PyAV, frame by frame; ``skip_frames``: video frames already
    in the output (``--resume``)."""

    path: str
    frame: int | None = None
    video: bool = False
    skip_frames: frozenset[int] = field(default_factory=frozenset)


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def expand_sources(sources: Iterable[str]) -> list[WorkItem]:
    """Every file the sources name, in order, each once; ``SourceError`` for a source that
    names nothing (or when there is nothing at all)."""
    seen: set[str] = set()
    items: list[WorkItem] = []
    for source in sources:
        found = 0
        for path in _expand_one(source):
            found += 1
            if path not in seen:
                seen.add(path)
                items.append(WorkItem(path, video=is_video(path)))
        if not found:
            raise SourceError(f"{source!r} holds no files")
    if not items:
        raise SourceError("no files to predict")
    return items


def _expand_one(source: str) -> Iterator[str]:
    path = Path(source)
    if path.is_dir():
        yield from _walk(path)
    elif path.is_file():
        if path.suffix.lower() in LIST_SUFFIXES:
            yield from _listed(path)
        else:
            yield _absolute(path)
    elif _GLOB_CHARS & set(source):
        for match in sorted(glob.glob(source, recursive=True)):
            matched = Path(match)
            yield from _walk(matched) if matched.is_dir() else [_absolute(matched)]
    else:
        raise SourceError(f"{source!r} does not exist")


def _walk(folder: Path) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield _absolute(Path(root) / name)


def _listed(listing: Path) -> Iterator[str]:
    """The paths a text or CSV file lists; a listed folder is walked."""
    base = listing.parent
    with listing.open(newline="", encoding="utf-8") as handle:
        if listing.suffix.lower() == ".csv":
            rows = [row for row in csv.reader(handle) if row]
            column = 0
            if rows and "path" in rows[0]:  # a header row
                column = rows[0].index("path")
                rows = rows[1:]
            entries = [row[column] if column < len(row) else "" for row in rows]
        else:
            entries = [line.strip() for line in handle]
    for entry in entries:
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry) if Path(entry).is_absolute() else base / entry
        yield from _walk(path) if path.is_dir() else [_absolute(path)]


def _absolute(path: Path) -> str:
    return os.path.abspath(path)
