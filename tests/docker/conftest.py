"""Collects the container tests' measurements and prints them after the run."""

from __future__ import annotations

import pytest

# Filled by the fixtures and tests in this folder: build time, image size, time to ready.
REPORT: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("docker measurements")
        for name, value in REPORT.items():
            terminalreporter.write_line(f"{name}: {value}")
