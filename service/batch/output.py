"""The output of ``rectifier predict``: Parquet, CSV or JSON Lines (told by ``--out``'s
extension), written in parts that are each complete on disk, then finalised into FILE.

While the run goes, rows land in ``FILE.parts/part-NNNNN.EXT``, each written to a hidden
temporary file, fsynced and renamed into place (then the folder fsynced), so a part is
there whole or not at all, whatever kills the writer. ``FILE.parts/_manifest.json`` says
which model wrote them. At the end the parts are finalised into FILE (itself written
atomically) and the folder removed; after Ctrl-C FILE holds every row so far and the parts
stay for ``--resume``; after SIGKILL the parts folder is the output as it stands (readable
as it is: ``pyarrow.dataset.dataset("FILE.parts", format="parquet")``, or ``csv``/``json``,
skips the ``_`` and ``.`` files). ``--resume`` reads back which images and frames the parts
hold and skips them, so no row is lost or written twice.

The model's name, version and ``card_digest`` go into the Parquet file's metadata, and
into ``FILE.meta.json`` beside a CSV or JSON Lines file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from model.card import ModelCard, card_digest
from model.files import write_atomically
from service.batch.errors import PredictUsageError, missing_extra
from service.batch.predictor import Row
from service.batch.sources import WorkItem

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
FORMATS[".ndjson"] = "jsonl"
COLUMNS = ("path", "frame", "timestamp", "label", "probability", "top_k", "error")
# Written only for a model whose card has an OOD scorer (``card.trust.ood``).
OOD_COLUMNS = ("ood_score", "in_distribution")
MANIFEST = "_manifest.json"
METADATA_PREFIX = "rectifier."


def output_format(out: Path) -> str:
    """``parquet``, ``csv`` or ``jsonl`` from the extension, or ``PredictUsageError``."""
    try:
        return FORMATS[out.suffix.lower()]
    except KeyError:
        choices = ", ".join(FORMATS)
        raise PredictUsageError(
            f"{out}: the extension says the format; use one of {choices}", "--out"
        ) from None


def columns_for(card: ModelCard) -> tuple[str, ...]:
    """The output's columns: ``ood_score`` and ``in_distribution`` when the card has them."""
    has_ood = card.trust is not None and card.trust.ood is not None
    return COLUMNS + OOD_COLUMNS if has_ood else COLUMNS


def row_schema(columns: tuple[str, ...] = COLUMNS) -> Any:
    """The rows' Arrow schema (Parquet parts, and the tables Ray's actors hand back)."""
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise missing_extra("Parquet output and --engine ray need pyarrow", "batch") from exc
    top = pa.struct([("label", pa.string()), ("probability", pa.float64())])
    schema = pa.schema(
        [
            ("path", pa.string()),
            ("frame", pa.int64()),
            ("timestamp", pa.float64()),
            ("label", pa.string()),
            ("probability", pa.float64()),
            ("top_k", pa.list_(top)),
            ("error", pa.string()),
            ("ood_score", pa.float64()),
            ("in_distribution", pa.bool_()),
        ]
    )
    return pa.schema([schema.field(name) for name in columns])


def run_metadata(card: ModelCard) -> dict[str, str]:
    """What identifies the model behind a set of predictions (Parquet key-value metadata,
    ``.meta.json``)."""
    return {"model": card.name, "version": str(card.version), "card_digest": card_digest(card)}


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def meta_path(out: Path) -> Path:
    return out.with_name(out.name + ".meta.json")


@dataclass
class DoneKeys:
    """What an unfinished output already holds: whole files (images, DICOM, a video that
    failed) by path, and video frames by path and index."""

    files: set[str] = field(default_factory=set)
    frames: dict[str, set[int]] = field(default_factory=dict)
    rows: int = 0

    def add(self, path: str, frame: int | None, timestamp: float | None) -> None:
        self.rows += 1
        if timestamp is None or frame is None:
            self.files.add(path)
        else:
            self.frames.setdefault(path, set()).add(int(frame))

    def remaining(self, items: Iterable[WorkItem]) -> list[WorkItem]:
        """``items`` less what is done; a video keeps its done frames as ``skip_frames``."""
        left = []
        for item in items:
            if item.path in self.files:
                continue
            if item.video and item.path in self.frames:
                item = WorkItem(item.path, item.frame, True, frozenset(self.frames[item.path]))
            left.append(item)
        return left


class OutputSink:
    """One run's output: its parts, its manifest, and FILE at the end."""

    def __init__(
        self, out: Path, metadata: dict[str, str], columns: tuple[str, ...] = COLUMNS
    ) -> None:
        self.out = out
        self.format = output_format(out)
        self.metadata = metadata
        self.columns = columns
        self.parts = parts_dir(out)
        self.codec = _CODECS[self.format](columns)
        self.rows_written = 0
        self.write_seconds = 0.0
        self._next_part = 0

    def check_writable(self, resume: bool) -> None:
        """Fail before any work (naming the flag) when FILE cannot be written."""
        if self.out.is_dir():
            raise PredictUsageError(f"{self.out} is a folder, not a file", "--out")
        if self.parts.exists() and not resume:
            raise PredictUsageError(
                f"{self.parts} holds an unfinished run: pass --resume to continue it, or delete it",
                "--out",
            )
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            probe = self.out.parent / f".{self.out.name}.probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise PredictUsageError(
                f"cannot write {self.out}: {exc.strerror or exc}", "--out"
            ) from exc

    def open(self, resume: bool) -> DoneKeys:
        """Create (or, resuming, read back) the parts folder; what it holds already."""
        self.check_writable(resume)
        done = DoneKeys()
        manifest = {"format": self.format, **self.metadata}
        if resume and not self.parts.exists() and self.out.is_file():
            self.parts.mkdir()  # a finished run: its FILE is the first part
            shutil.copyfile(self.out, self.parts / self._part_name(0))
            self._write_manifest(manifest)
        if resume and self.parts.exists():
            self._check_manifest(manifest)
            for part in self.part_files():
                for path, frame, timestamp in self.codec.keys(part):
                    done.add(path, frame, timestamp)
                self._next_part = max(self._next_part, _part_number(part) + 1)
            for stale in self.parts.glob(".*"):
                stale.unlink()  # a temporary part a killed writer left
        else:
            self.parts.mkdir(parents=True, exist_ok=True)
            self._write_manifest(manifest)
        self.rows_written = done.rows
        return done

    def write(self, rows: list[Row]) -> None:
        """One part holding ``rows``, complete on disk before this returns."""
        if not rows:
            return
        started = time.perf_counter()
        path = self.parts / self._part_name(self._next_part)
        self._next_part += 1
        _durable_write(path, lambda handle: self.codec.write_part(rows, handle))
        self.rows_written += len(rows)
        self.write_seconds += time.perf_counter() - started

    def finalise(self, complete: bool) -> Path:
        """FILE from every part (atomically); the parts removed when the run is complete."""
        started = time.perf_counter()
        parts = self.part_files()
        _durable_write(self.out, lambda handle: self.codec.join(parts, handle, self.metadata))
        if self.format != "parquet":
            _durable_write(meta_path(self.out), self._meta_json)
        if complete:
            shutil.rmtree(self.parts)
        self.write_seconds += time.perf_counter() - started
        return self.out

    def part_files(self) -> list[Path]:
        suffix = f".{self.codec.extension}"
        return sorted(p for p in self.parts.glob(f"part-*{suffix}") if p.name.startswith("part-"))

    def _part_name(self, number: int) -> str:
        return f"part-{number:05d}.{self.codec.extension}"

    def _meta_json(self, handle: BinaryIO) -> None:
        meta = {**self.metadata, "format": self.format, "columns": list(self.columns)}
        handle.write(json.dumps(meta, indent=2).encode() + b"\n")

    def _write_manifest(self, manifest: dict[str, str]) -> None:
        data = json.dumps(manifest, indent=2).encode() + b"\n"
        _durable_write(self.parts / MANIFEST, lambda handle: handle.write(data))

    def _check_manifest(self, manifest: dict[str, str]) -> None:
        try:
            found = json.loads((self.parts / MANIFEST).read_text())
        except (OSError, ValueError):
            found = {}
        if found != manifest:
            raise PredictUsageError(
                f"{self.parts} was written by {found.get('model')} version "
                f"{found.get('version')} (card {found.get('card_digest', '?')[:12]}, "
                f"{found.get('format')}), not by this model and format: resume with the same "
                "--model and --out, or delete it",
                "--resume",
            )


def _durable_write(path: Path, write: Any) -> None:
    """``write_atomically`` with the data and the rename fsynced: whole or absent."""

    def synced(handle: BinaryIO) -> None:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())

    write_atomically(path, synced)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _part_number(part: Path) -> int:
    return int(part.name.split(".")[0].removeprefix("part-"))


Key = tuple[str, int | None, float | None]


class _ParquetCodec:
    extension = "parquet"

    def __init__(self, columns: tuple[str, ...]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise missing_extra("Parquet output needs pyarrow", "batch") from exc
        self.pa, self.pq = pa, pq
        self.schema = row_schema(columns)

    def write_part(self, rows: list[Row], handle: BinaryIO) -> None:
        self.pq.write_table(self.pa.Table.from_pylist(rows, schema=self.schema), handle)

    def keys(self, part: Path) -> Iterator[Key]:
        table = self.pq.read_table(part, columns=["path", "frame", "timestamp"])
        columns = (table.column(c).to_pylist() for c in ("path", "frame", "timestamp"))
        yield from zip(*columns, strict=True)

    def join(self, parts: list[Path], handle: BinaryIO, metadata: dict[str, str]) -> None:
        meta = {f"{METADATA_PREFIX}{k}": v for k, v in metadata.items()}
        with self.pq.ParquetWriter(handle, self.schema.with_metadata(meta)) as writer:
            for part in parts:  # one part in memory at a time
                writer.write_table(self.pq.read_table(part, schema=self.schema))


class _CsvCodec:
    extension = "csv"

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns

    def write_part(self, rows: list[Row], handle: BinaryIO) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(self.columns)
        for row in rows:
            writer.writerow(
                json.dumps(row[c]) if c == "top_k" and row[c] is not None else _cell(row[c])
                for c in self.columns
            )
        handle.write(text.getvalue().encode("utf-8"))

    def keys(self, part: Path) -> Iterator[Key]:
        with part.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                frame = int(row["frame"]) if row["frame"] else None
                timestamp = float(row["timestamp"]) if row["timestamp"] else None
                yield row["path"], frame, timestamp

    def join(self, parts: list[Path], handle: BinaryIO, metadata: dict[str, str]) -> None:
        handle.write((",".join(self.columns) + "\n").encode())
        for part in parts:
            with part.open("rb") as source:
                source.readline()  # each part's header
                shutil.copyfileobj(source, handle)


class _JsonLinesCodec:
    extension = "jsonl"

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns

    def write_part(self, rows: list[Row], handle: BinaryIO) -> None:
        handle.write(
            b"".join(json.dumps({c: row[c] for c in self.columns}).encode() + b"\n" for row in rows)
        )

    def keys(self, part: Path) -> Iterator[Key]:
        with part.open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                yield row["path"], row["frame"], row["timestamp"]

    def join(self, parts: list[Path], handle: BinaryIO, metadata: dict[str, str]) -> None:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, handle)


_CODECS: dict[str, type[_ParquetCodec] | type[_CsvCodec] | type[_JsonLinesCodec]] = {
    "parquet": _ParquetCodec,
    "csv": _CsvCodec,
    "jsonl": _JsonLinesCodec,
}


def _cell(value: Any) -> Any:
    return "" if value is None else value
