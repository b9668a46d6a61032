"""The measurements of docs/trust.md: OOD scores and calibration on the project's own data.

    .venv/bin/python -m bench.trust_study --out bench/results/trust_study.json

Trains small models (minutes on two CPU cores) and scores them with ``rectifier
evaluate-ood``'s own functions:

- synthetic signs, 6 of the 8 classes in distribution; near OOD: the 2 held-out classes;
  far OOD: uniform noise, crops of pydicom's bundled CT and MR slices, and MedMNIST-format
  grey-level images; for relu, leaky_relu, prelu, elu and maxout on simple_cnn, and relu on
  resnet18;
- a MedMNIST-format model (synthetic bloodmnist-format file) against another
  (dermamnist-format) and noise.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIGN_CLASSES_HELD_OUT = ("keep_right", "ahead_only")
IMG = 32


def sign_folders(work: Path) -> tuple[Path, Path]:
    """An image folder of 6 sign classes (train/val/test) and one of the 2 held out."""
    from training.datasets.synthetic_signs import SignSetSpec, generate_sign_folder

    spec = SignSetSpec(seed=0, size=IMG, train_per_class=150, val_per_class=40, test_per_class=60)
    source = generate_sign_folder(work / "signs", spec)
    inside, held = work / "signs-id", work / "signs-held-out"
    for split in ("train", "val", "test"):
        for class_dir in sorted((source / split).iterdir()):
            if not class_dir.is_dir():
                continue
            parent = held if class_dir.name in SIGN_CLASSES_HELD_OUT else inside / split
            target = parent / class_dir.name
            target.mkdir(parents=True, exist_ok=True)
            for file in class_dir.iterdir():
                link = target / f"{split}-{file.name}"
                if not link.exists():
                    os.symlink(file.resolve(), link)
    return inside, held


def dicom_crops(work: Path, per_slice: int = 60) -> Path:
    """Random square crops (30-100 % of the side) of pydicom's bundled CT and MR slices."""
    import pydicom
    from pydicom.data import get_testdata_file

    folder = work / "dicom-crops"
    if folder.is_dir():
        return folder
    rng = np.random.default_rng(0)
    for name in ("CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm"):
        dataset = pydicom.dcmread(get_testdata_file(name))
        pixels = dataset.pixel_array.astype(np.float64)
        low, high = np.percentile(pixels, [1, 99])
        grey = ((pixels - low) / max(high - low, 1) * 255).clip(0, 255).astype(np.uint8)
        kind = folder / str(dataset.Modality).lower()
        kind.mkdir(parents=True, exist_ok=True)
        side = min(grey.shape)
        for index in range(per_slice):
            size = int(side * rng.uniform(0.3, 1.0))
            y, x = (
                rng.integers(0, grey.shape[0] - size + 1),
                rng.integers(0, grey.shape[1] - size + 1),
            )
            crop = Image.fromarray(grey[y : y + size, x : x + size]).convert("RGB")
            crop.save(kind / f"{Path(name).stem}-{index:03d}.png")
    return folder


def medmnist_files(work: Path) -> Path:
    from tests.helpers.datasets import write_medmnist

    root = work / "medmnist"
    if not (root / "bloodmnist.npz").exists():
        write_medmnist(root, "bloodmnist", channels=3, classes=8, counts=(400, 100, 200), seed=1)
        write_medmnist(root, "dermamnist", channels=3, classes=7, counts=(200, 100, 200), seed=2)
    return root


def train_run(work: Path, name: str, data: str, data_root: str | None, **overrides: Any) -> Path:
    from training.config import TrainConfig
    from training.run import train

    values: dict[str, Any] = {
        "data": data,
        "data_root": data_root,
        "arch": "simple_cnn",
        "arch_options": {"width": 16, "depth": 2, "dropout": 0.0},
        "activation": "relu",
        "img_size": IMG,
        "epochs": 6,
        "batch_size": 32,
        "lr": 3e-3,
        "patience": 0,
        "device": "cpu",
        "workers": 0,
        "seed": 0,
        "progress": False,
        "out": str(work / "runs"),
        "name": name,
    }
    values.update(overrides)
    config = TrainConfig(**values).validate()
    return train(config).run_dir


def measure(run: Path, sets: dict[str, tuple[str, str | None]], limit: int) -> dict[str, Any]:
    from training.evaluate_ood import evaluate_sets, ood_images, scored_run
    from training.run_folder import RunFolder

    scored = scored_run(RunFolder(run), limit)
    training = (scored.dataset, scored.data_root)
    images = {
        label: ood_images(spec, scored.preprocessing, root, limit, training)
        for label, (spec, root) in sets.items()
    }
    results = evaluate_sets(scored, images)
    results.pop("_histograms")
    return results


SHORT = {
    "max_probability": "MSP",
    "energy": "energy",
    "react_energy": "ReAct",
    "mahalanobis": "Mahal.",
}


def render(results: dict[str, Any]) -> str:
    """The tables of docs/trust.md: AUROC per model, set and scorer; calibration per model."""
    lines = [
        "| model | OOD set | images | " + " | ".join(SHORT.values()) + " | FPR95 (Mahal.) |",
        "|---|---|---:|" + "---:|" * (len(SHORT) + 1),
    ]
    for model, r in results.items():
        for name, entry in r["sets"].items():
            s = entry["scores"]
            best = max(s[k]["auroc"] for k in SHORT)
            cells = [
                f"**{s[k]['auroc']:.3f}**" if s[k]["auroc"] == best else f"{s[k]['auroc']:.3f}"
                for k in SHORT
            ]
            fpr = s["mahalanobis"]["fpr95"]
            lines.append(
                f"| {model} | {name} | {entry['images']} | {' | '.join(cells)} | {fpr:.3f} |"
            )
    lines += [
        "",
        "| model | test images | T | ECE before | ECE after | NLL before | NLL after |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model, r in results.items():
        b, a = r["calibration"]["before"], r["calibration"]["after"]
        lines.append(
            f"| {model} | {r['test_images']} | {r['temperature']:.3f} | {b['ece']:.4f} | "
            f"{a['ece']:.4f} | {b['nll']:.4f} | {a['nll']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("/tmp/trust-study"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/trust_study.json"))
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--only", default="", help="comma-separated model keys")
    parser.add_argument("--render", action="store_true", help="print --out's tables and stop")
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(args.out.read_text())))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    inside, held = sign_folders(args.work)
    crops = dicom_crops(args.work)
    medmnist = medmnist_files(args.work)
    sign_sets = {
        "near: 2 held-out sign classes": (f"imagefolder:{held}", None),
        "far: uniform noise": ("noise:300", None),
        "far: pydicom CT/MR crops": (f"imagefolder:{crops}", None),
        "far: MedMNIST-format grey images": ("medmnist:dermamnist", str(medmnist)),
    }
    models: dict[str, dict[str, Any]] = {
        f"simple_cnn/{act}": {"activation": act}
        for act in ("relu", "leaky_relu", "prelu", "elu", "maxout:2")
    }
    models["resnet18/relu"] = {"arch": "resnet18", "arch_options": {}, "epochs": 3}
    wanted = set(filter(None, args.only.split(",")))
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    for key, overrides in models.items():
        if wanted and key not in wanted:
            continue
        start = time.perf_counter()
        run = train_run(
            args.work,
            key.replace("/", "-").replace(":", ""),
            f"imagefolder:{inside}",
            None,
            **overrides,
        )
        results[f"signs {key}"] = {
            **measure(run, sign_sets, args.limit),
            "seconds": time.perf_counter() - start,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    if not wanted or "medmnist" in wanted:
        run = train_run(args.work, "medmnist", "medmnist:bloodmnist", str(medmnist), img_size=28)
        medmnist_sets = {
            "other MedMNIST-format file (dermamnist)": ("medmnist:dermamnist", str(medmnist)),
            "far: uniform noise": ("noise:300", None),
            "far: pydicom CT/MR crops": (f"imagefolder:{crops}", None),
        }
        results["medmnist bloodmnist-format simple_cnn/relu"] = measure(
            run, medmnist_sets, args.limit
        )
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
