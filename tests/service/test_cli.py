"""``rectifier serve`` refuses bad settings and unusable providers before opening a port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "1", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here"
)
def test_explicit_cuda_without_cuda_is_a_clear_startup_error(tmp_path):
    result = serve("--models", str(tmp_path), "--device", "cuda")
    assert result.returncode == 2
    assert "CUDAExecutionProvider" in result.stderr
    assert "not available in this onnxruntime build" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_environment_names_the_variable(tmp_path):
    result = serve("--models", str(tmp_path), env={"RECTIFIER_LOG_FORMAT": "yaml"})
    assert result.returncode == 2
    assert "RECTIFIER_LOG_FORMAT" in result.stderr and "'text' or 'json'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_models_folder_is_refused(tmp_path):
    result = serve("--models", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "RECTIFIER_MODELS_DIR" in result.stderr and "not a directory" in result.stderr
