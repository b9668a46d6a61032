"""Video files (mp4, mkv, avi, ... through PyAV) -> frames with their index and timestamp.

Frames are decoded one at a time and handed on as they come, so a 10,000-frame video
costs the memory of a few frames, not of the video. ``every`` keeps every Nth frame,
``fps`` about F frames per second of video (by timestamp); frames count from 0 in
decoding order. A file PyAV cannot open, or a frame it cannot decode, becomes a
``VideoFault`` (a row with its error) and ends that video; the run goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from service.batch.errors import missing_extra


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of a video to classify: every ``every``-th, or ``fps`` per second."""

    every: int = 1
    fps: float | None = None


@dataclass
class VideoFrame:
    path: str
    index: int
    timestamp: float
    image: Image.Image


@dataclass(frozen=True)
class VideoFault:
    path: str
    index: int | None  # the frame that failed; None: the file itself
    message: str


def iter_frames(
    path: str, selection: FrameSelection, skip: frozenset[int] = frozenset()
) -> Iterator[VideoFrame | VideoFault]:
    """The selected frames of the video at ``path`` (less those in ``skip``), in order."""
    try:
        import av
    except ImportError as exc:
        raise missing_extra("video input needs PyAV", "batch") from exc
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError) as exc:
        yield VideoFault(path, None, f"cannot open the video: {_reason(exc)}")
        return
    with container:
        if not container.streams.video:
            yield VideoFault(path, None, "the file has no video stream")
            return
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        index = -1
        next_time = 0.0
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except (av.FFmpegError, OSError, ValueError) as exc:
                yield VideoFault(
                    path, index + 1, f"cannot decode frame {index + 1}: {_reason(exc)}"
                )
                return
            index += 1
            timestamp = _timestamp(frame.time, index, rate)
            if not _selected(index, timestamp, selection, next_time):
                continue
            if selection.fps:
                next_time = max(next_time + 1.0 / selection.fps, timestamp)
            if index in skip:
                continue
            yield VideoFrame(path, index, timestamp, frame.to_image())


def frame_estimate(path: str, selection: FrameSelection) -> int | None:
    """About how many frames ``iter_frames`` will yield (for the progress bar)."""
    try:
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            count = int(stream.frames or 0)
            if not count and stream.duration and stream.time_base and stream.average_rate:
                seconds = float(stream.duration * stream.time_base)
                count = round(seconds * float(stream.average_rate))
            if not count:
                return None
            if selection.fps and stream.average_rate:
                return max(1, round(count * selection.fps / float(stream.average_rate)))
            return -(-count // selection.every)
    except Exception:  # the real read reports the problem as a row
        return None


def _selected(index: int, timestamp: float, selection: FrameSelection, next_time: float) -> bool:
    if selection.fps:
        return timestamp + 1e-9 >= next_time
    return index % selection.every == 0


def _timestamp(time: float | None, index: int, rate: float | None) -> float:
    if time is not None:
        return float(time)
    return index / rate if rate else float(index)


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
