"""Fixtures of the batch-inference tests: the committed demo model, small folders in the
real formats, and the ``rectifier predict`` command run in process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from model.cli import app
from tests.helpers.batch import GOOD_IMAGES
from tests.helpers.images import animated_gif, encode, pattern


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """JPEGs and PNGs (one in a subfolder), a truncated JPEG, a text file, a 3-frame GIF."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for index in range(GOOD_IMAGES - 1):
        image = pattern((64 + 3 * index, 56), seed=index)
        (folder / f"img{index:02d}.jpg").write_bytes(encode(image, "JPEG", quality=90))
    (folder / "sub" / "last.png").write_bytes(encode(pattern((50, 50), seed=99), "PNG"))
    (folder / "truncated.jpg").write_bytes(encode(pattern((80, 64)), "JPEG")[:300])
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "anim.gif").write_bytes(animated_gif())
    return folder


@pytest.fixture
def predict() -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str | Path) -> Result:
        return runner.invoke(app, ["predict", *map(str, args)])

    return run
