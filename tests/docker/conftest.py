"""Collects the container tests' measurements and prints them after the run."""

from __future__ import annotations

import pytest

from tests.docker.harness import REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("docker measurements")
        for name, value in REPORT.items():
            terminalreporter.write_line(f"{name}: {value}")
