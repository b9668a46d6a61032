"""The service must run where torch (and onnx) are not installed."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys

    class Block:
        # What only the train, track and ray extras install: `make serve` has none of it.
        blocked = (
            "torch", "torchvision", "onnx", "onnxscript", "matplotlib", "sklearn", "mlflow",
            "tensorboard", "ray",
        )

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())

    from pathlib import Path
    from fastapi.testclient import TestClient
    from service.app.factory import create_app
    from service.plumbing.settings import Settings
    import service.run.cli

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
        response = client.post(
            "/v1/models/rgb/predict",
            content=open(sys.argv[3], "rb").read(),
            headers={"Content-Type": "application/dicom"},
        )
        assert response.status_code == 200, response.text
        for path, kind, fmt in ((2, "image/png", "png"), (3, "application/dicom", "json")):
            response = client.post(
                "/v1/models/rgb/explain",
                params={"format": fmt},
                content=open(sys.argv[path], "rb").read(),
                headers={"Content-Type": kind},
            )
            assert response.status_code == 200, response.text
    # rectifier explain, the CLI's core, is torch-free too.
    from model.cam_file import explain_file
    explain_file(Path(sys.argv[2]), Path(sys.argv[1]) / "rgb")
    served = sorted(m for m in sys.modules if m.startswith("model."))
    # `rectifier` itself registers every command module it finds: `make serve` runs it too.
    from model.cli import app as cli_app
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in Block.blocked)
    assert not loaded, loaded
    print("torch-free ok")
    print("model modules:", " ".join(served))
    """
)


@pytest.fixture(scope="module")
def torch_free_run(model_repo_dir, tmp_path_factory) -> subprocess.CompletedProcess[str]:
    from tests.helpers.dicom import ct_bytes
    from tests.helpers.images import encode, pattern

    folder = tmp_path_factory.mktemp("torch-free")
    image, scan = folder / "a.png", folder / "scan.dcm"
    image.write_bytes(encode(pattern(), "PNG"))
    scan.write_bytes(ct_bytes())
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(model_repo_dir), str(image), str(scan)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_service_builds_and_serves_without_torch(torch_free_run):
    assert torch_free_run.returncode == 0, torch_free_run.stderr
    assert "torch-free ok" in torch_free_run.stdout


def _serving_image_model_files() -> dict[str, set[str]]:
    """The model/ paths each serving stage of the Dockerfile copies (files, and folders
    ending in '/'), relative to model/, by stage name."""
    copied: dict[str, set[str]] = {}
    stage = ""
    for line in (REPO_ROOT / "Dockerfile").read_text().splitlines():
        if match := re.match(r"FROM \S+ AS (\S+)", line):
            stage = match.group(1)
        elif stage in ("serve-venv", "serve-gpu-venv") and line.startswith("COPY model/"):
            words = [word.removeprefix("model/") for word in line.split()[1:-1]]
            copied.setdefault(stage, set()).update(words)
    return copied


def _module_file(module: str) -> str:
    """'model.decoding.dicom' -> 'decoding/dicom.py'; a package -> its __init__.py."""
    parts = module.split(".")[1:]
    if (REPO_ROOT / "model" / Path(*parts)).is_dir():
        parts.append("__init__")
    return str(Path(*parts)) + ".py"


def _is_copied(path: str, copied: set[str]) -> bool:
    return path in copied or any(path.startswith(c) for c in copied if c.endswith("/"))


def test_serving_images_copy_every_model_module_the_service_loads(torch_free_run):
    # The serving images copy model/ file by file to keep torch code out; a new torch-free
    # module that the service imports must be added there too, or the container cannot start.
    assert torch_free_run.returncode == 0, torch_free_run.stderr
    listed = torch_free_run.stdout.split("model modules:", 1)[1].split()
    needed = {_module_file(name) for name in listed}
    copied = _serving_image_model_files()
    assert set(copied) == {"serve-venv", "serve-gpu-venv"}, copied
    for stage, paths in copied.items():
        missing = sorted(path for path in needed if not _is_copied(path, paths))
        assert not missing, f"Dockerfile stage {stage} lacks {missing}"
