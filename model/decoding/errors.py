"""The one error every decoder raises: a code from the service's error vocabulary
(``service.plumbing.errors.ERROR_STATUS``) and a message that names the problem.

Messages are written here, never copied from a library's exception text: a DICOM file's
values may be patient identifiers, and no message may carry one (docs/medical-imaging.md).
"""

from __future__ import annotations

from typing import Any, Literal

DecodeErrorCode = Literal[
    "invalid_image", "image_too_large", "multiple_frames", "unsupported_media_type"
]


class DecodeError(ValueError):
    def __init__(self, code: DecodeErrorCode, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.code: DecodeErrorCode = code
        self.message = message
        self.detail = detail
