"""``service/batch`` is torch-free, like the rest of ``service/``: its modules import, and
``rectifier predict`` runs, where torch, onnx and Ray are blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers.batch import DEMO_MODEL

SCRIPT = textwrap.dedent(
    """
    import sys

    class Block:
        blocked = ("torch", "torchvision", "onnx", "onnxscript", "mlflow", "ray")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    import service.batch.cli, service.batch.ray_engine
    from pathlib import Path
    from service.batch.run import PredictRequest, run_predict

    request = PredictRequest(sources=[sys.argv[1]], model=Path(sys.argv[2]), out=Path(sys.argv[3]))
    summary = run_predict(request, echo=lambda line: None)
    assert summary.rows == 1 and not summary.errors, summary
    """
)


def test_batch_inference_runs_without_torch(tmp_path: Path) -> None:
    from tests.helpers.images import encode, pattern

    image = tmp_path / "one.jpg"
    image.write_bytes(encode(pattern(), "JPEG"))
    out = tmp_path / "out.parquet"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(image), str(DEMO_MODEL), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr
    assert out.is_file()
