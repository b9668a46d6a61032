"""The ``rectifier train`` command line the tracking tests run: a tiny two-epoch run."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.helpers.datasets import TINY

runner = CliRunner()
EPOCHS = 2


def train_args(out: Path, data_dir: Path, *extra: str) -> list[str]:
    return [
        "train", "--data", f"imagefolder:{data_dir / 'folder'}", "--epochs", str(EPOCHS),
        "--out", str(out), "--name", "tracked", *TINY, *extra,
    ]  # fmt: skip
