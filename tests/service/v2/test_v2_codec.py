"""The codec is pure: importing it pulls in neither FastAPI nor a runtime nor torch."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.server import REPO_ROOT

CODEC_MODULES = (
    "codec", "encoding", "errors", "metadata", "request", "response", "schemas", "signature",
    "tensors",
)  # fmt: skip


def test_codec_modules_import_without_the_web_stack_or_a_runtime() -> None:
    imports = "; ".join(f"import service.protocols.v2.{name}" for name in CODEC_MODULES)
    probe = (
        f"import sys; {imports}; "
        "print(sorted(m for m in ('fastapi', 'starlette', 'onnxruntime', 'torch', 'onnx') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
