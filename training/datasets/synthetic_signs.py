"""Procedural traffic-sign-like images, deterministic from a seed.

Each image is drawn from scratch: a sign (shape, colours and glyph of its class) rendered at
twice the output size, warped by a random perspective and rotation, composited on a random
background (sky and ground, city blocks, foliage or smooth colour fields, sometimes with a
pole), then degraded by lighting, blur and sensor noise. Glyphs are drawn as strokes, not
with a font, so the pixels do not depend on the fonts installed on a machine.

Every image has its own random stream derived from ``(seed, split, class, index)``, so a
given image is the same whatever else is generated.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"
GENERATOR_VERSION = 1

Color = tuple[int, int, int]
Rng = np.random.Generator
Point = tuple[float, float]

# Stroke glyphs in a unit box (x right, y down): each is a list of polylines.
_GLYPHS: dict[str, list[list[Point]]] = {
    "0": [[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]],
    "3": [[(0, 0), (1, 0), (1, 1), (0, 1)], [(0.2, 0.5), (1, 0.5)]],
    "5": [[(1, 0), (0, 0), (0, 0.5), (1, 0.5), (1, 1), (0, 1)]],
    "8": [[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)], [(0, 0.5), (1, 0.5)]],
    "S": [[(1, 0), (0, 0), (0, 0.5), (1, 0.5), (1, 1), (0, 1)]],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "O": [[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]],
    "P": [[(0, 1), (0, 0), (1, 0), (1, 0.5), (0, 0.5)]],
}


@dataclass(frozen=True)
class SignStyle:
    name: str
    draw: Callable[[ImageDraw.ImageDraw, int, Rng], None]


def _jitter(color: Color, rng: Rng, amount: int = 18) -> Color:
    r, g, b = (int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)
    return (r, g, b)


def _red(rng: Rng) -> Color:
    return _jitter((200, 25, 30), rng, 25)


def _white(rng: Rng) -> Color:
    return _jitter((240, 240, 235), rng, 12)


def _blue(rng: Rng) -> Color:
    return _jitter((20, 70, 170), rng, 22)


def _regular_polygon(center: Point, radius: float, sides: int, rotation: float) -> list[Point]:
    cx, cy = center
    return [
        (
            cx + radius * math.cos(rotation + 2 * math.pi * k / sides),
            cy + radius * math.sin(rotation + 2 * math.pi * k / sides),
        )
        for k in range(sides)
    ]


def _text(draw: ImageDraw.ImageDraw, text: str, center: Point, height: float, color: Color) -> None:
    """Stroke text centred on ``center``; glyph width is 0.55 of the height."""
    width = 0.55 * height
    gap = 0.3 * width
    total = len(text) * width + (len(text) - 1) * gap
    stroke = max(1, round(height * 0.16))
    left = center[0] - total / 2
    top = center[1] - height / 2
    for i, char in enumerate(text):
        x0 = left + i * (width + gap)
        for line in _GLYPHS[char]:
            points = [(x0 + x * width, top + y * height) for x, y in line]
            draw.line(points, fill=color, width=stroke, joint="curve")


def _arrow(
    draw: ImageDraw.ImageDraw, center: Point, size: float, angle: float, color: Color
) -> None:
    """A white arrow pointing at ``angle`` (radians, 0 = up, clockwise)."""
    shape = [(-0.12, 0.45), (0.12, 0.45), (0.12, -0.05), (0.3, -0.05), (0, -0.45), (-0.3, -0.05)]
    shape += [(-0.12, -0.05)]
    cos, sin = math.cos(angle), math.sin(angle)
    points = [
        (center[0] + size * (x * cos - y * sin), center[1] + size * (x * sin + y * cos))
        for x, y in shape
    ]
    draw.polygon(points, fill=color)


def _stop(draw: ImageDraw.ImageDraw, res: int, rng: Rng) -> None:
    c = (res / 2, res / 2)
    draw.polygon(_regular_polygon(c, res * 0.48, 8, math.pi / 8), fill=_white(rng))
    draw.polygon(_regular_polygon(c, res * 0.44, 8, math.pi / 8), fill=_red(rng))
    _text(draw, "STOP", c, res * 0.22, _white(rng))


def _yield(draw: ImageDraw.ImageDraw, res: int, rng: Rng) -> None:
    # Inverted triangle: the apex points down.
    c = (res / 2, res * 0.4)
    draw.polygon(_regular_polygon(c, res * 0.56, 3, math.pi / 2), fill=_red(rng))
    draw.polygon(_regular_polygon(c, res * 0.32, 3, math.pi / 2), fill=_white(rng))


def _no_entry(draw: ImageDraw.ImageDraw, res: int, rng: Rng) -> None:
    r = res * 0.48
    draw.ellipse((res / 2 - r, res / 2 - r, res / 2 + r, res / 2 + r), fill=_red(rng))
    draw.rectangle((res * 0.2, res * 0.42, res * 0.8, res * 0.58), fill=_white(rng))


def _priority_road(draw: ImageDraw.ImageDraw, res: int, rng: Rng) -> None:
    c = (res / 2, res / 2)
    draw.polygon(_regular_polygon(c, res * 0.49, 4, 0), fill=_jitter((30, 30, 30), rng))
    draw.polygon(_regular_polygon(c, res * 0.46, 4, 0), fill=_white(rng))
    draw.polygon(_regular_polygon(c, res * 0.3, 4, 0), fill=_jitter((245, 190, 20), rng, 20))


def _speed_limit(text: str) -> Callable[[ImageDraw.ImageDraw, int, Rng], None]:
    def draw_sign(draw: ImageDraw.ImageDraw, res: int, rng: Rng) -> None:
        r, inner = res * 0.48, res * 0.37
        draw.ellipse((res / 2 - r, res / 2 - r, res / 2 + r, res / 2 + r), fill=_red(rng))
        box = (res / 2 - inner, res / 2 - inner, res / 2 + inner, res / 2 + inner)
        draw.ellipse(box, fill=_white(rng))
        _text(draw, text, (res / 2, res / 2), res * 0.34, _jitter((20, 20, 20), rng))

    return draw_sign


def _blue_arrow(angle: float) -> Callable[[ImageDraw.ImageDraw, int, Rng], None]:
    def draw_sign(draw: ImageDraw.ImageDraw, res: int, rng: Rng) -> None:
        r = res * 0.48
        draw.ellipse((res / 2 - r, res / 2 - r, res / 2 + r, res / 2 + r), fill=_blue(rng))
        _arrow(draw, (res / 2, res / 2), res * 0.75, angle, _white(rng))

    return draw_sign


# Alphabetical, the order an image folder lists them in, so class indices agree everywhere.
SIGNS: tuple[SignStyle, ...] = (
    SignStyle("ahead_only", _blue_arrow(0.0)),
    SignStyle("keep_right", _blue_arrow(3 * math.pi / 4)),
    SignStyle("no_entry", _no_entry),
    SignStyle("priority_road", _priority_road),
    SignStyle("speed_limit_30", _speed_limit("30")),
    SignStyle("speed_limit_50", _speed_limit("50")),
    SignStyle("stop", _stop),
    SignStyle("yield", _yield),
)
CLASS_NAMES: tuple[str, ...] = tuple(s.name for s in SIGNS)


# --- backgrounds ------------------------------------------------------------------------


def _smooth_field(rng: Rng, res: int, cells: int, base: np.ndarray, spread: float) -> np.ndarray:
    grid = np.clip(base + rng.normal(0, spread, (cells, cells, 3)), 0, 255).astype(np.uint8)
    field = Image.fromarray(grid, "RGB").resize((res, res), Image.Resampling.BICUBIC)
    return np.asarray(field, dtype=np.float32)


def _sky_and_ground(rng: Rng, res: int) -> np.ndarray:
    horizon = int(res * rng.uniform(0.45, 0.85))
    rows = np.linspace(0, 1, horizon, dtype=np.float32)[:, None, None]
    top, bottom = rng.uniform([60, 110, 170], [140, 180, 240]), rng.uniform(180, 240, 3)
    sky = top + (bottom - top) * rows
    ground = _smooth_field(rng, res, 6, rng.uniform([60, 70, 50], [130, 140, 110]), 20)
    image = ground.copy()
    image[:horizon] = np.broadcast_to(sky, (horizon, res, 3))
    return image


def _city(rng: Rng, res: int) -> np.ndarray:
    image = np.broadcast_to(rng.uniform(120, 220, 3), (res, res, 3)).astype(np.float32)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = rng.integers(0, res, 2)
        w, h = rng.integers(res // 8, res // 2, 2)
        image[y0 : y0 + h, x0 : x0 + w] = rng.uniform(40, 200, 3)
    return image


def _foliage(rng: Rng, res: int) -> np.ndarray:
    canvas = Image.fromarray(
        _smooth_field(rng, res, 4, np.array([60, 100, 50]), 25).astype(np.uint8), "RGB"
    )
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(10, 30))):
        x, y = rng.integers(0, res, 2)
        r = int(rng.integers(res // 20, res // 6))
        green = rng.uniform([20, 60, 10], [110, 160, 80]).astype(int)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in green))
    return np.asarray(canvas, dtype=np.float32)


def _color_field(rng: Rng, res: int) -> np.ndarray:
    return _smooth_field(rng, res, int(rng.integers(2, 6)), rng.uniform(50, 200, 3), 45)


_BACKGROUNDS = (_sky_and_ground, _city, _foliage, _color_field)


def _background(rng: Rng, res: int) -> Image.Image:
    pixels = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))](rng, res)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.5:  # a sign pole below the centre
        draw = ImageDraw.Draw(image)
        x = res / 2 + rng.uniform(-0.05, 0.05) * res
        half = res * rng.uniform(0.015, 0.03)
        draw.rectangle((x - half, res / 2, x + half, res), fill=_jitter((130, 130, 130), rng, 30))
    return image


# --- geometry and degradation -----------------------------------------------------------


def _perspective_coefficients(source: list[Point], target: list[Point]) -> list[float]:
    """Coefficients for PIL's PERSPECTIVE transform mapping ``target`` back to ``source``."""
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values += [u, v]
    return list(np.linalg.solve(np.array(rows, float), np.array(values, float)))


def _place(sign: Image.Image, rng: Rng, res: int) -> Image.Image:
    """Warp the sign onto a transparent canvas: scale, offset, rotation and perspective."""
    scale = rng.uniform(0.6, 0.92) * res
    angle = math.radians(rng.uniform(-12, 12))
    cx = res / 2 + rng.uniform(-1, 1) * (res - scale) * 0.35
    cy = res / 2 + rng.uniform(-1, 1) * (res - scale) * 0.35
    corners = []
    for x, y in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)):
        jx, jy = rng.uniform(-0.08, 0.08, 2)
        x, y = (x + jx) * scale, (y + jy) * scale
        corners.append(
            (
                cx + x * math.cos(angle) - y * math.sin(angle),
                cy + x * math.sin(angle) + y * math.cos(angle),
            )
        )
    size = sign.size[0]
    source = [(0.0, 0.0), (size, 0.0), (size, size), (0.0, size)]
    coefficients = _perspective_coefficients(source, corners)
    return sign.transform(
        (res, res), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
    )


def _degrade(image: Image.Image, rng: Rng) -> Image.Image:
    """Lighting (gain, colour cast, shading gradient), blur and sensor noise."""
    radius = rng.uniform(0.0, 1.0)
    if radius > 0.15:
        image = image.filter(ImageFilter.GaussianBlur(radius))
    pixels = np.asarray(image, dtype=np.float32)
    h, w = pixels.shape[:2]
    gain = rng.uniform(0.55, 1.25) * rng.uniform(0.9, 1.1, 3)
    gx, gy = rng.uniform(-0.3, 0.3, 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    shading = 1 + gx * (xs / w - 0.5) + gy * (ys / h - 0.5)
    pixels = pixels * gain * shading[:, :, None]
    pixels += rng.normal(0, rng.uniform(0, 8), pixels.shape)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def render_sign(class_name: str, rng: Rng, size: int = 64) -> Image.Image:
    """One RGB ``size`` x ``size`` image of the named sign class."""
    style = next((s for s in SIGNS if s.name == class_name), None)
    if style is None:
        raise ValueError(f"unknown sign class {class_name!r}; valid: {', '.join(CLASS_NAMES)}")
    res = 2 * size  # drawn at twice the size, then downsampled: anti-aliased edges
    sign = Image.new("RGBA", (res, res), (0, 0, 0, 0))
    style.draw(ImageDraw.Draw(sign), res, rng)
    scene = _background(rng, res).convert("RGBA")
    scene.alpha_composite(_place(sign, rng, res))
    image = scene.convert("RGB").resize((size, size), Image.Resampling.BOX)
    return _degrade(image, rng)


def image_rng(seed: int, split: str, class_index: int, index: int) -> Rng:
    return np.random.default_rng([seed, SPLITS.index(split), class_index, index])


@dataclass(frozen=True)
class SignSetSpec:
    """What a generated folder holds; stored as its manifest so a match can be reused."""

    seed: int = 0
    size: int = 64
    train_per_class: int = 400
    val_per_class: int = 50
    test_per_class: int = 100
    image_format: str = "png"
    generator_version: int = GENERATOR_VERSION

    @property
    def folder_name(self) -> str:
        return (
            f"v{self.generator_version}-seed{self.seed}-{self.size}px-{self.train_per_class}"
            f"-{self.val_per_class}-{self.test_per_class}-{self.image_format}"
        )

    def count(self, split: str) -> int:
        return {
            "train": self.train_per_class,
            "val": self.val_per_class,
            "test": self.test_per_class,
        }[split]


def generate_sign_folder(root: str | Path, spec: SignSetSpec = SignSetSpec()) -> Path:
    """Write ``root/{train,val,test}/<class>/<class>-NNNNN.<fmt>``; reuse a matching folder."""
    root = Path(root)
    manifest = root / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()) == asdict(spec):
        log.info("reusing synthetic signs in %s", root)
        return root
    if spec.image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be png or jpg, got {spec.image_format!r}")
    manifest.unlink(missing_ok=True)  # written last: a partial folder is never reused
    total = 0
    for split in SPLITS:
        for class_index, name in enumerate(CLASS_NAMES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(spec.count(split)):
                image = render_sign(
                    name, image_rng(spec.seed, split, class_index, index), spec.size
                )
                path = folder / f"{name}-{index:05d}.{spec.image_format}"
                image.save(path, quality=92) if spec.image_format == "jpg" else image.save(path)
                total += 1
    manifest.write_text(json.dumps(asdict(spec), indent=2))
    log.info("generated %d synthetic sign images in %s", total, root)
    return root


def render_examples(
    folder: str | Path, names: Iterable[tuple[str, str]], *, seed: int = 2024, size: int = 128
) -> list[Path]:
    """Write one image per ``(class_name, file_name)``; the suffix picks the format."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (class_name, file_name) in enumerate(names):
        rng = np.random.default_rng([seed, CLASS_NAMES.index(class_name), index])
        path = folder / file_name
        render_sign(class_name, rng, size).save(path)
        written.append(path)
    return written
