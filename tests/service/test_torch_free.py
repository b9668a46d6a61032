"""The service must run where torch (and onnx) are not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys

    class Block:
        blocked = ("torch", "torchvision", "onnx", "onnxscript")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())

    from pathlib import Path
    from fastapi.testclient import TestClient
    from service.app import create_app
    from service.config import Settings
    import service.cli

    app = create_app(Settings(models_dir=Path(sys.argv[1])))
    with TestClient(app) as client:
        import time
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.05)
        response = client.post(
            "/v1/models/rgb/predict",
            content=open(sys.argv[2], "rb").read(),
            headers={"Content-Type": "image/png"},
        )
        assert response.status_code == 200, response.text
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in Block.blocked)
    assert not loaded, loaded
    print("torch-free ok")
    """
)


def test_service_builds_and_serves_without_torch(model_repo_dir, tmp_path):
    from tests.service.conftest import encode, pattern

    image = tmp_path / "a.png"
    image.write_bytes(encode(pattern(), "PNG"))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(model_repo_dir), str(image)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "torch-free ok" in result.stdout
