"""The errors of ``rectifier predict`` that stop it before any work, each naming its flag."""

from __future__ import annotations


class PredictUsageError(ValueError):
    """Bad input to the command: ``param`` is the flag (or argument) at fault; exit 2."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def missing_extra(what: str, extra: str) -> ImportError:
    """The error for an optional dependency that is not installed, naming its extra."""
    return ImportError(f"{what}, which is not installed: pip install 'rectifier[{extra}]'")
