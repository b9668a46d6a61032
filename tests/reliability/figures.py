"""The ``figures`` fixture: print a test's measured figures past pytest's capture, so the
closing numbers (cases answered, load, memory, shutdown) show in every CI log."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest


@pytest.fixture
def figures(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    def show(text: str) -> None:
        with capsys.disabled():
            sys.stdout.write(f"\n{text.strip()}\n")

    return show
