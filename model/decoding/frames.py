"""One multi-frame policy for every format: TIFF pages, GIF/APNG/WebP frames, DICOM frames.

A multi-frame input is refused (naming its frame count) unless a frame is asked for, by the
request (the ``frame`` parameter of V1 and V2) or by the model card's
``preprocessing.frame``; the request wins. A frame outside the input is refused too. Frames
count from 0.
"""

from __future__ import annotations

from model.decoding.errors import DecodeError


def choose_frame(fmt: str, frame_count: int, frame: int | None) -> int:
    """The index of the frame to decode, or ``DecodeError``."""
    if frame is None:
        if frame_count > 1:
            raise DecodeError(
                "multiple_frames",
                f"the {fmt} image has {frame_count} frames and this model classifies one "
                f"image: send a single-frame image, or choose a frame with the 'frame' "
                f"parameter (0 to {frame_count - 1})",
                {"format": fmt, "frames": frame_count},
            )
        return 0
    if frame >= frame_count:
        what = (
            "1 frame (frame 0)"
            if frame_count == 1
            else f"{frame_count} frames (0 to {frame_count - 1})"
        )
        raise DecodeError(
            "invalid_image",
            f"frame {frame} was asked for, but the {fmt} image has {what}",
            {"format": fmt, "frames": frame_count, "frame": frame},
        )
    return frame
