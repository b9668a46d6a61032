from pathlib import Path

import pytest
import torch

from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tests.helpers.models import make_checkpoint


def test_round_trip_rebuilds_the_same_model(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "a.pt", activation="leaky_relu:0.2", color_mode="L")
    ckpt = load_checkpoint(path)
    assert ckpt.config.activation == "leaky_relu:0.2"
    assert ckpt.config.in_channels == 1
    assert not ckpt.model.training
    x = torch.randn(2, 1, 32, 32)
    again = load_checkpoint(path)
    torch.testing.assert_close(ckpt.model(x), again.model(x))
    assert len(ckpt.sha256) == 64


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    ckpt = load_checkpoint(make_checkpoint(tmp_path / "a.pt"))

    class Boom(torch.nn.Module):
        def state_dict(self, *args: object, **kwargs: object) -> dict:  # type: ignore[override]
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(tmp_path / "a.pt", ckpt.config, Boom())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]
    load_checkpoint(tmp_path / "a.pt")  # the old file is intact


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a zip", "not a readable checkpoint"),
        (None, "no such checkpoint"),
    ],
)
def test_bad_files_fail_clearly(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_foreign_torch_file_is_refused(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a Rectifier checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
