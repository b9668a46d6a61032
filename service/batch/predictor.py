"""THE per-batch function of ``rectifier predict``: work items -> rows, for every engine.

Each input is decoded by ``model.decoding.decode_image`` (bytes: images and DICOM, with the
server's ``max_image_pixels`` bound and the card's frame and DICOM policy) or comes from
``service.batch.video`` (a decoded frame, bounded by the same check); it is preprocessed by
``model.preprocess.preprocess_image`` into a batch, and the batch runs on an onnxruntime
session made by ``service.inference.providers`` for ``--device`` as ``serve`` makes it.
The local engine calls it in process, the Ray engine in each actor of its pool: there is
no second pipeline. Bad input never raises: it becomes a row whose ``error`` says
``kind: message``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from model.card import ModelCard, card_from_metadata
from model.decoding import DecodeError, decode_image
from model.decoding.limits import check_size
from model.preprocess import preprocess_image
from service.batch.sources import WorkItem
from service.batch.video import FrameSelection, VideoFault, VideoFrame, iter_frames
from service.inference.providers import create_session, intra_op_threads, select_providers
from service.inference.served_model import check_card_against_graph
from service.inference.trust import load_trust
from service.plumbing.settings import Settings, load_settings

Row = dict[str, Any]
Input = WorkItem | VideoFrame | VideoFault
PHASES = ("read", "decode", "preprocess", "inference")


@dataclass(frozen=True)
class PredictorConfig:
    """What a predictor needs; plain values, so Ray can ship it to its actors."""

    model_file: str
    device: str | None = None
    intra_op_threads: int | None = None
    batch_size: int | None = None  # None: the server's max_batch_size
    top_k: int | None = None  # None: the server's default_top_k
    all_frames: bool = False
    decode_threads: int | None = None  # None: the cores onnxruntime may use; 0: inline
    selection: FrameSelection = field(default_factory=FrameSelection)

    def settings(self) -> Settings:
        """The server's settings (environment included) with this run's flags on top; the
        model repository is not read here, so it is the model file's own folder."""
        return load_settings(
            device=self.device,
            intra_op_threads=self.intra_op_threads,
            models_dir=Path(self.model_file).parent,
        )


def expand_inputs(items: Iterable[WorkItem], selection: FrameSelection) -> Iterator[Input]:
    """Files as they are; each video as its selected frames, decoded as they are reached."""
    for item in items:
        if item.video:
            yield from iter_frames(item.path, selection, item.skip_frames)
        else:
            yield item


class BatchPredictor:
    """One model's session and card, and the function that turns inputs into rows."""

    def __init__(self, config: PredictorConfig) -> None:
        settings = config.settings()
        self.config = config
        self.max_pixels = settings.max_image_pixels
        self.batch_size = config.batch_size or settings.max_batch_size
        self.session = create_session(Path(config.model_file), settings, select_providers(settings))
        self.card: ModelCard = card_from_metadata(self.session.get_modelmeta().custom_metadata_map)
        check_card_against_graph(self.card, self.session)
        self.top_k = min(config.top_k or settings.default_top_k, self.card.num_classes)
        # The card's OOD scorer and statistics, loaded and checked as the server loads them.
        graph_outputs = [o.name for o in self.session.get_outputs()]
        self.trust = load_trust(self.card, Path(config.model_file), graph_outputs)
        self.outputs = [self.card.output_name]
        if self.trust is not None:
            self.outputs += [self.trust.logits_output, self.trust.features_output]
        if settings.warmup:  # as the server warms a model: first-run allocations here
            warm = np.zeros((self.batch_size, *self.card.input_shape), dtype=np.float32)
            self.session.run([self.card.output_name], {self.card.input_name: warm})
        self.seconds = dict.fromkeys(PHASES, 0.0)  # core seconds, summed over threads
        self._lock = threading.Lock()
        # As many decode threads as the cores onnxruntime may use (Pillow and NumPy
        # release the GIL): the server's decode pool is sized the same way.
        threads = config.decode_threads
        self.decode_threads = intra_op_threads(settings) if threads is None else threads
        self._pool = (
            ThreadPoolExecutor(self.decode_threads, thread_name_prefix="decode")
            if self.decode_threads
            else None
        )

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def predict(self, inputs: Iterable[Input]) -> list[Row]:
        """One row per image or frame of ``inputs``, in order; inference in batches of
        ``batch_size``. ``inputs`` is consumed lazily (a video's frames one by one), and
        decoding runs ahead on the decode threads while a batch is in ``session.run``, as
        the server's decode pool overlaps its batcher."""
        batch = np.empty((self.batch_size, *self.card.input_shape), dtype=np.float32)
        rows: list[Row] = []
        waiting: list[Row] = []
        for row, tensor in self._prepared(inputs):
            rows.append(row)
            if tensor is None:
                continue
            batch[len(waiting)] = tensor
            waiting.append(row)
            if len(waiting) == self.batch_size:
                self._infer(batch, waiting)
        self._infer(batch, waiting)
        return rows

    def _prepared(self, inputs: Iterable[Input]) -> Iterator[tuple[Row, np.ndarray | None]]:
        """(row, tensor) per image, in order, from up to two batches' worth of inputs
        decoding and preprocessing at once on the pool."""
        if self._pool is None:
            for item in inputs:
                yield from self._prepare(item)
            return
        window: deque[Future[list[tuple[Row, np.ndarray | None]]]] = deque()
        for item in inputs:
            window.append(self._pool.submit(self._prepare, item))
            if len(window) >= 2 * self.batch_size:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()

    def _prepare(self, item: Input) -> list[tuple[Row, np.ndarray | None]]:
        """Decode and preprocess one input (on a decode thread)."""
        spec = self.card.preprocessing
        prepared: list[tuple[Row, np.ndarray | None]] = []
        for row, image in self._decoded(item):
            if image is None:
                prepared.append((row, None))
                continue
            started = time.perf_counter()
            try:
                prepared.append((row, preprocess_image(image, spec)))
            except Exception as exc:  # an exotic mode Pillow cannot convert
                row["error"] = f"invalid_image: cannot convert the image to the model: {exc}"
                prepared.append((row, None))
            finally:
                image.close()
                self._spent("preprocess", started)
        return prepared

    def _spent(self, phase: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        with self._lock:
            self.seconds[phase] += elapsed

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _decoded(self, item: Input) -> Iterator[tuple[Row, Image.Image | None]]:
        """(row, decoded image) per image of ``item``; image None: the row holds its error."""
        if isinstance(item, VideoFault):
            yield _row(item.path, item.index, None, f"invalid_video: {item.message}"), None
        elif isinstance(item, VideoFrame):
            yield from self._video_frame(item)
        else:
            yield from self._file(item)

    def _video_frame(self, item: VideoFrame) -> Iterator[tuple[Row, Image.Image | None]]:
        row = _row(item.path, item.index, item.timestamp)
        try:
            check_size("video", *item.image.size, self.card.preprocessing, self.max_pixels)
        except DecodeError as exc:
            item.image.close()
            row["error"] = f"{exc.code}: {exc.message}"
            yield row, None
            return
        yield row, item.image

    def _file(self, item: WorkItem) -> Iterator[tuple[Row, Image.Image | None]]:
        spec = self.card.preprocessing
        if item.frame is not None:
            spec = spec.model_copy(update={"frame": item.frame})
        frame = spec.frame if spec.frame is not None else 0
        started = time.perf_counter()
        try:
            data = Path(item.path).read_bytes()
        except OSError as exc:
            data, unreadable = b"", f"unreadable: {exc.strerror or exc}"
        else:
            unreadable = ""
        self._spent("read", started)
        if unreadable:
            yield _row(item.path, frame, None, unreadable), None
            return
        try:
            yield _row(item.path, frame), self._decode(data, spec)
        except DecodeError as exc:
            frames = exc.detail.get("frames") if isinstance(exc.detail, dict) else None
            if exc.code != "multiple_frames" or not self.config.all_frames or not frames:
                yield _row(item.path, frame, None, f"{exc.code}: {exc.message}"), None
                return
            for index in range(int(frames)):  # --all-frames: every frame, one row each
                try:
                    image = self._decode(data, spec.model_copy(update={"frame": index}))
                except DecodeError as frame_exc:
                    error = f"{frame_exc.code}: {frame_exc.message}"
                    yield _row(item.path, index, None, error), None
                    continue
                yield _row(item.path, index), image

    def _decode(self, data: bytes, spec: Any) -> Image.Image:
        started = time.perf_counter()
        try:
            return decode_image(data, spec, self.max_pixels)
        finally:
            self._spent("decode", started)

    def _infer(self, batch: np.ndarray, waiting: list[Row]) -> None:
        if not waiting:
            return
        card = self.card
        started = time.perf_counter()
        probabilities, *trust_outputs = self.session.run(
            self.outputs, {card.input_name: batch[: len(waiting)]}
        )
        self.seconds["inference"] += time.perf_counter() - started
        if self.trust is not None:
            logits, features = trust_outputs
            scores = self.trust.score(logits, features)
            inside = self.trust.inside(scores).tolist()
            for row, score, within in zip(waiting, scores.tolist(), inside, strict=True):
                row["ood_score"] = score
                row["in_distribution"] = within
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, : self.top_k]
        for row, scores, best in zip(waiting, probabilities.tolist(), order.tolist(), strict=True):
            row["label"] = card.labels[best[0]]
            row["probability"] = scores[best[0]]
            row["top_k"] = [{"label": card.labels[i], "probability": scores[i]} for i in best]
        waiting.clear()


def _row(path: str, frame: int | None, timestamp: float | None = None, error: str = "") -> Row:
    return {
        "path": path,
        "frame": frame,
        "timestamp": timestamp,
        "label": None,
        "probability": None,
        "top_k": None,
        "error": error,
        "ood_score": None,
        "in_distribution": None,
    }


def error_kind(error: str) -> str:
    """The kind of an ``error`` cell: what precedes its first colon."""
    return error.partition(":")[0]
