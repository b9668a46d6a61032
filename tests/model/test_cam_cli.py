"""``rectifier explain IMAGE --model models/NAME``: the overlay PNG next to the image."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

from model.card import card_from_metadata, read_card, write_card
from model.cli import app
from tests.helpers.cli import flat
from tests.helpers.images import pattern

runner = CliRunner()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "photo.jpg"
    pattern((60, 48)).save(path, quality=90)
    return path


def test_explain_writes_the_overlay_next_to_the_image(model_repo, image: Path) -> None:
    model_dir = model_repo["rgb"].onnx_path.parents[1]
    result = runner.invoke(app, ["explain", str(image), "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    overlay = image.with_name("photo.cam.png")
    assert f"wrote {overlay}" in result.output
    assert "8x8 class-activation map of rgb version 1" in result.output
    with Image.open(overlay) as picture:
        assert (picture.format, picture.mode, picture.size) == ("PNG", "RGB", (256, 256))
        pixels = np.asarray(picture, dtype=np.int16)
    assert pixels.std() > 5  # a heatmap over an image, not a flat fill
    # No temporary file is left beside it.
    assert sorted(p.name for p in image.parent.iterdir()) == ["photo.cam.png", "photo.jpg"]


def test_explain_a_named_label_to_a_chosen_file(model_repo, image: Path, tmp_path: Path) -> None:
    onnx_file = model_repo["rgb"].onnx_path
    out = tmp_path / "dog.png"
    args = ["explain", str(image), "--model", str(onnx_file), "--label", "dog", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "(dog, p=" in result.output and out.is_file()


def test_bad_arguments_name_the_flag_and_the_choices(
    model_repo, image: Path, tmp_path: Path
) -> None:
    model_dir = str(model_repo["rgb"].onnx_path.parents[1])
    result = runner.invoke(app, ["explain", str(image), "--model", model_dir, "--label", "fish"])
    assert result.exit_code == 2
    assert "--label" in flat(result.output)
    assert "unknown label 'fish'; model rgb has: cat, dog, bird" in flat(result.output)

    result = runner.invoke(app, ["explain", str(image), "--model", str(tmp_path)])
    assert result.exit_code == 2
    assert "--model" in flat(result.output) and "holds no model.onnx" in flat(result.output)

    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    result = runner.invoke(app, ["explain", str(text), "--model", model_dir])
    assert result.exit_code == 2
    assert "IMAGE" in flat(result.output) and "cannot read" in flat(result.output)


def test_a_model_exported_without_maps_is_refused_with_the_reason(
    model_repo, image: Path, tmp_path: Path
) -> None:
    proto = onnx.load(str(model_repo["gray"].onnx_path))
    card = card_from_metadata({p.key: p.value for p in proto.metadata_props})
    write_card(proto, card.model_copy(update={"class_activation_maps": None}))
    old = tmp_path / "old.onnx"
    onnx.save(proto, str(old))
    assert read_card(old).class_activation_maps is None
    result = runner.invoke(app, ["explain", str(image), "--model", str(old)])
    assert result.exit_code == 2
    output = flat(result.output)
    assert "--model" in output and "has no class-activation maps" in output
    assert "re-export it with `rectifier export`" in output
