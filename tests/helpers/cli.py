"""Reading command-line output in tests."""

from __future__ import annotations

import re


def flat(output: str) -> str:
    """CLI output without rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())
