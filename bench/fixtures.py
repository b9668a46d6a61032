"""What the benchmark serves: random-weight checkpoints exported to ONNX (speed does not
depend on the weights), a JPEG upload at each model's size, the int8 variant, and the
synthetic sign images used for calibration and for the demo model's int8 accuracy."""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.card import Preprocessing

log = logging.getLogger("bench")

SEED = 0
LABELS = tuple(f"class_{i}" for i in range(10))
# name -> (architecture options, resize size, crop size): simple_cnn as the demo builds it.
MODELS: dict[str, tuple[dict[str, Any], int, int]] = {
    "simple_cnn": ({"width": 16, "depth": 3, "dropout": 0.1}, 64, 64),
    "resnet18": ({}, 256, 224),
}
DEMO_MODEL = Path(__file__).resolve().parents[1] / "models" / "demo" / "1" / "model.onnx"
DEMO_DATA = "synthetic-signs:300"  # what training.demo trains and tests on


@dataclass(frozen=True)
class PreparedModel:
    name: str
    repo: Path  # a model repository holding this model only
    onnx: Path
    image: Path  # the JPEG upload
    sample: np.ndarray  # the upload, preprocessed: the in-process limit's input
    int8: tuple[Path, Path, dict[str, Any]] | None = None  # (onnx, repo, precision report)


def synthetic_signs(root: Path) -> Any:
    """The demo's dataset (generated once, then reused from ``root``)."""
    from training.datasets import load_dataset

    return load_dataset(DEMO_DATA, root, seed=SEED)


def _spec(resize: int, crop: int) -> Preprocessing:
    return Preprocessing(
        color_mode="RGB",
        resize_size=resize,
        crop_size=crop,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )


def random_checkpoint(name: str, folder: Path) -> Path:
    import torch

    from model.checkpoint import ModelConfig, save_checkpoint

    options, resize, crop = MODELS[name]
    config = ModelConfig(
        architecture=name,
        activation="relu",
        task="multiclass",
        labels=LABELS,
        preprocessing=_spec(resize, crop),
        dataset="random-weights (benchmark)",
        architecture_options=options,
    )
    torch.manual_seed(SEED)
    return save_checkpoint(folder / f"{name}.pt", config, config.build().eval())


def sign_upload(name: str, folder: Path, size: int) -> Path:
    """A sign scene rendered at the model's input size, saved as a quality-90 JPEG."""
    from training.datasets.synthetic_signs import render_sign

    image = render_sign("stop", np.random.default_rng(SEED), size=size)
    path = folder / f"{name}-{size}px.jpg"
    image.save(path, quality=90)
    return path


def image_set(dataset: Any, spec: Preprocessing, calibration: int, holdout: int) -> Any:
    """Calibration images from the train split, holdout (with targets) from the test split."""
    from training.calibration import bundle_image_set

    return bundle_image_set(
        dataset,
        spec,
        calibration=calibration,
        holdout=holdout,
        seed=SEED,
        source=f"{DEMO_DATA} (train for calibration, test held out)",
    )


def prepare_model(
    name: str, workdir: Path, dataset: Any, *, int8: bool, calibration: int, holdout: int
) -> PreparedModel:
    from model.decoding import load_and_preprocess
    from model.export import export_checkpoint
    from model.quantize import reduce_precision

    _, resize, crop = MODELS[name]
    repo = workdir / "repos" / name
    checkpoint = random_checkpoint(name, workdir / "checkpoints")
    exported = export_checkpoint(checkpoint, repo, name, version=1)
    image = sign_upload(name, workdir, crop)
    sample = load_and_preprocess(str(image), _spec(resize, crop))
    quantized = None
    if int8:
        int8_name = f"{name}_int8"
        int8_repo = workdir / "repos" / int8_name
        int8_path = int8_repo / int8_name / "1" / "model.onnx"
        images = image_set(dataset, _spec(resize, crop), calibration, holdout)
        # Not enforced: a random network's top-1 is a coin toss between near-equal
        # probabilities; the demo model's agreement is the one that is checked.
        report = reduce_precision(exported.path, int8_path, "int8", images, enforce=False)
        rename_card(int8_path, int8_name)
        quantized = (int8_path, int8_repo, asdict(report))
    return PreparedModel(name, repo, exported.path, image, sample, quantized)


def rename_card(path: Path, name: str) -> None:
    """A reduced-precision copy is served under its own name; its card must say so."""
    import onnx

    from model.card import read_card
    from model.export import write_card

    proto = onnx.load(str(path))
    write_card(proto, read_card(path).model_copy(update={"name": name}))
    onnx.save(proto, str(path))


def demo_model(workdir: Path) -> PreparedModel:
    """The bundled demo model (simple_cnn, trained) in a repository of its own, with an
    upload at its input size."""
    from model.card import read_card
    from model.decoding import load_and_preprocess

    if not DEMO_MODEL.exists():
        raise FileNotFoundError(f"{DEMO_MODEL} is missing (make demo-model)")
    name = read_card(DEMO_MODEL).name
    onnx_path = workdir / "repos" / name / name / "1" / "model.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEMO_MODEL, onnx_path)
    spec = read_card(DEMO_MODEL).preprocessing
    image = sign_upload(name, workdir, spec.crop_size)
    sample = load_and_preprocess(str(image), spec)
    return PreparedModel(name, onnx_path.parents[2], onnx_path, image, sample)


def demo_int8_report(dataset: Any, workdir: Path, calibration: int) -> dict[str, Any]:
    """int8 against fp32 for the trained demo model, on its own test split."""
    from model.card import read_card
    from model.quantize import reduce_precision

    if not DEMO_MODEL.exists():
        return {"error": f"{DEMO_MODEL} is missing (make demo-model)"}
    card = read_card(DEMO_MODEL)
    if tuple(card.labels) != tuple(dataset.labels):
        return {"error": f"the demo model's labels differ from {DEMO_DATA}'s"}
    images = image_set(dataset, card.preprocessing, calibration, len(dataset.test))
    report = reduce_precision(DEMO_MODEL, workdir / "demo-int8.onnx", "int8", images, enforce=False)
    return asdict(report)
