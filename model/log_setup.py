"""Log levels, the text log line and the one rule that picks a command's level.

Every ``rectifier`` command logs through the root option ``--log-level``; the service reads
the same ``RECTIFIER_LOG_LEVEL`` through its settings. Precedence: the flag, then the
variable, then ``DEFAULT_LOG_LEVEL``. Torch-free: the serving image copies it.
"""

from __future__ import annotations

import logging
import os

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_LOG_LEVEL = "INFO"
LOG_LEVEL_VARIABLE = "RECTIFIER_LOG_LEVEL"
# The text line of every command (the service's adds a timestamp, service/plumbing/logging.py).
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class LogLevelError(ValueError):
    """A log level that is not one of ``LOG_LEVELS``."""


def check_log_level(value: str) -> str:
    """``value`` upper-cased, or LogLevelError naming the valid levels."""
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        choices = f"{', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}"
        raise LogLevelError(f"{value!r} is not a log level; choose {choices}")
    return level


def resolve_log_level(flag: str | None) -> str:
    """The level to log at: the flag, else the variable, else the default."""
    if flag is not None:
        return check_log_level(flag)
    variable = os.environ.get(LOG_LEVEL_VARIABLE)
    return check_log_level(variable) if variable else DEFAULT_LOG_LEVEL


def configure_text_logging(level: str | int, line_format: str = TEXT_FORMAT) -> None:
    """Plain ``logging.basicConfig`` at ``level`` with the shared line format."""
    logging.basicConfig(level=level, format=line_format)
