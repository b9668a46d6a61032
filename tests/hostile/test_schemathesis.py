"""Schemathesis against the real server's served OpenAPI schema: no 5xx, no answer outside
the schema (status codes, content types, headers, bodies), within a bounded budget.

Schemathesis generates valid and invalid requests for every operation in
``/openapi.json`` (V1, V2, probes), then stateful sequences along the schema's links. The
run is bounded by examples per operation and by a total time budget.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.server import running_server

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
MAX_EXAMPLES = 15
MAX_TIME_S = 40


@pytest.mark.slow
def test_served_openapi_schema_holds(
    model_repo_dir: Path, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color",
        "run", "PLACEHOLDER",
        "--checks", ",".join(CHECKS),
        "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_TIME_S),
        "--request-timeout", "10", "--workers", "1", "--seed", "8",
        "--generation-database", "none",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    with running_server(model_repo_dir) as server:
        command[command.index("PLACEHOLDER")] = f"{server.url}/openapi.json"
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=MAX_TIME_S + 120, check=False
        )
        logs = server.logs()
    summary = result.stdout[result.stdout.rfind("SUMMARY") :]
    counts = [line.strip() for line in summary.splitlines() if "generated" in line]
    figures(f"schemathesis: {'; '.join(counts) or summary[-300:]}")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "passed" in summary and "failures" not in summary, summary
    assert "Traceback" not in logs, logs[-4000:]
