import io

import numpy as np
import pytest
from PIL import Image

from model.card import Preprocessing
from model.decoding import load_and_preprocess
from model.preprocess import preprocess_image, resize_and_crop, to_color_mode

RGB = Preprocessing(
    color_mode="RGB", resize_size=40, crop_size=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)
)
GRAY = Preprocessing(color_mode="L", resize_size=32, crop_size=32, mean=(0.5,), std=(0.25,))


def test_normalisation_matches_the_textbook_formula() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    spec = Preprocessing(color_mode="RGB", resize_size=32, crop_size=32, mean=RGB.mean, std=RGB.std)
    out = preprocess_image(Image.fromarray(pixels), spec)
    expected = (pixels / 255.0 - np.array(RGB.mean)) / np.array(RGB.std)
    np.testing.assert_allclose(out, expected.transpose(2, 0, 1), atol=1e-5)
    assert out.dtype == np.float32 and out.shape == (3, 32, 32)


def test_shorter_side_resize_then_centre_crop() -> None:
    image = Image.new("RGB", (100, 50))
    assert resize_and_crop(image, RGB).size == (32, 32)
    tall = Image.new("L", (20, 80))
    assert resize_and_crop(tall, GRAY).size == (32, 32)


@pytest.mark.parametrize(
    ("mode", "color"),
    [("RGBA", (0, 0, 0, 0)), ("LA", (0, 0)), ("P", 0)],
)
def test_transparency_is_composited_on_white(mode: str, color: object) -> None:
    image = Image.new(mode, (4, 4), color)  # type: ignore[arg-type]
    if mode == "P":
        image.info["transparency"] = 0
    assert np.asarray(to_color_mode(image, "RGB")).min() == 255


def test_sixteen_bit_images_keep_their_range() -> None:
    pixels = np.full((4, 4), 65535, dtype=np.uint16)
    image = Image.fromarray(pixels)
    assert image.mode.startswith("I")
    assert np.asarray(to_color_mode(image, "L")).tolist() == [[255] * 4] * 4
    half = Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16))
    assert int(np.asarray(to_color_mode(half, "L"))[0, 0]) == 128


def test_colour_images_work_for_grayscale_models_and_vice_versa() -> None:
    assert preprocess_image(Image.new("RGB", (40, 40), (10, 200, 30)), GRAY).shape == (1, 32, 32)
    assert preprocess_image(Image.new("L", (40, 40), 128), RGB).shape == (3, 32, 32)


def test_exif_orientation_is_honoured(tmp_path) -> None:
    image = Image.new("RGB", (64, 32), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 32, 32))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.png"
    image.save(path, exif=exif)
    out = load_and_preprocess(
        str(path),
        Preprocessing(
            color_mode="RGB", resize_size=32, crop_size=32, mean=(0, 0, 0), std=(1, 1, 1)
        ),
    )
    # Displayed upright the image is 32 wide and 64 tall: the blue half ends up on top.
    assert out[2, 2, 16] > 0.9 and out[0, 2, 16] < 0.1


def test_file_loading_uses_the_jpeg_draft_like_the_service(tmp_path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 30, 200)).save(buffer, "JPEG")
    path = tmp_path / "big.jpg"
    path.write_bytes(buffer.getvalue())
    out = load_and_preprocess(str(path), RGB)
    assert out.shape == (3, 32, 32)
    assert abs(float(out[0].mean()) - (120 / 255 - 0.5) / 0.2) < 0.05
