"""Dataset specs (``--data``) -> loaders of the real on-disk formats. Nothing downloads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.datasets.base import DatasetBundle, DatasetError, Split

__all__ = ["DATA_FORMS", "DataSpec", "DatasetBundle", "DatasetError", "Split", "load_dataset"]

DATA_FORMS = "medmnist:FLAG, gtsrb[:roi], imagefolder:DIR, synthetic-signs[:TRAIN_PER_CLASS]"
DEFAULT_SYNTHETIC_ROOT = Path("data/synthetic-signs")


@dataclass(frozen=True)
class DataSpec:
    kind: str  # medmnist | gtsrb | imagefolder | synthetic-signs
    argument: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.argument}" if self.argument else self.kind


def parse_data_spec(text: str) -> DataSpec:
    kind, _, argument = text.strip().partition(":")
    kind = kind.lower()
    if kind == "medmnist":
        from training.datasets.medmnist import FLAGS

        if argument.lower() not in FLAGS:
            raise DatasetError(
                f"medmnist needs a dataset flag, got {argument!r}; valid flags: {', '.join(FLAGS)}"
            )
        return DataSpec(kind, argument.lower())
    if kind == "imagefolder":
        if not argument:
            raise DatasetError("imagefolder needs a folder: imagefolder:DIR")
        return DataSpec(kind, argument)
    if kind == "gtsrb" and argument.lower() in ("", "roi"):
        return DataSpec(kind, argument.lower())
    if kind == "synthetic-signs":
        if argument and not (argument.isdigit() and int(argument) > 0):
            raise DatasetError(
                f"synthetic-signs takes a positive training count per class, got {argument!r}"
            )
        return DataSpec(kind, argument)
    raise DatasetError(f"unknown data spec {text!r}; valid forms: {DATA_FORMS}")


def load_dataset(
    text: str, data_root: str | Path | None = None, *, seed: int = 0, img_size: int | None = None
) -> DatasetBundle:
    """Load the dataset a ``--data`` spec names; ``data_root`` is where its files live.

    ``img_size`` picks the MedMNIST file of that resolution when there is one.
    """
    spec = parse_data_spec(text)
    if spec.kind == "medmnist":
        from training.datasets.medmnist import load_medmnist

        if data_root is None:
            raise DatasetError("medmnist needs --data-root: the folder holding FLAG[_SIZE].npz")
        return load_medmnist(Path(data_root), spec.argument, img_size)
    if spec.kind == "gtsrb":
        from training.datasets.gtsrb import load_gtsrb

        if data_root is None:
            raise DatasetError("gtsrb needs --data-root: the folder holding GTSRB/")
        return load_gtsrb(Path(data_root), roi_crop=spec.argument == "roi", seed=seed)
    if spec.kind == "imagefolder":
        folder = Path(spec.argument)
        if data_root is not None and not folder.is_absolute():
            folder = Path(data_root) / folder
        return load_image_folder_spec(folder, seed)
    return load_synthetic_signs(Path(data_root) if data_root else DEFAULT_SYNTHETIC_ROOT, spec)


def load_image_folder_spec(folder: Path, seed: int) -> DatasetBundle:
    from training.datasets.imagefolder import load_image_folder

    return load_image_folder(folder, seed=seed)


def load_synthetic_signs(root: Path, spec: DataSpec) -> DatasetBundle:
    from training.datasets.imagefolder import load_image_folder
    from training.datasets.synthetic_signs import SignSetSpec, generate_sign_folder

    sign_spec = SignSetSpec(train_per_class=int(spec.argument)) if spec.argument else SignSetSpec()
    # One sub-folder per generator setting, so different settings never mix their files.
    folder = root / sign_spec.folder_name
    generate_sign_folder(folder, sign_spec)
    return load_image_folder(folder, name="synthetic-signs", hflip=False)
