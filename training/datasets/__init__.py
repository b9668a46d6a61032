"""Dataset kinds (``--data KIND[:ARGUMENT]``): one registry table, like the activation and
architecture registries. A new kind is one ``DatasetKind`` entry in ``DATASET_KINDS``.

Loaders read the real on-disk formats; nothing downloads. Each loader module is imported
only when its kind is loaded, so parsing a spec (the CLI's check) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training.datasets.base import DatasetBundle, DatasetError, Split

__all__ = [
    "DATASET_KINDS",
    "DataSpec",
    "DatasetBundle",
    "DatasetError",
    "DatasetKind",
    "LoadRequest",
    "Split",
    "data_forms",
    "load_dataset",
    "monitor_metric",
    "parse_data_spec",
]

DEFAULT_SYNTHETIC_ROOT = Path("data/synthetic-signs")


@dataclass(frozen=True)
class LoadRequest:
    """What a loader gets: the spec's argument and the run's data settings."""

    argument: str
    root: Path | None
    seed: int
    img_size: int | None


@dataclass(frozen=True)
class DatasetKind:
    name: str
    form: str  # how --data spells it, for help texts and errors
    load: Callable[[LoadRequest], DatasetBundle]
    # Checks the part after ``KIND:`` and returns it normalised; raises DatasetError.
    parse_argument: Callable[[str], str]
    root_holds: str | None = None  # what --data-root must hold; None: the kind needs none
    monitor_metric: Literal["acc", "auc"] = "acc"  # what early stopping and best.pt follow


@dataclass(frozen=True)
class DataSpec:
    kind: str
    argument: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.argument}" if self.argument else self.kind


# --- the kinds --------------------------------------------------------------------------


def _medmnist_flag(argument: str) -> str:
    from training.datasets.medmnist import FLAGS

    if argument.lower() not in FLAGS:
        raise DatasetError(
            f"medmnist needs a dataset flag, got {argument!r}; valid flags: {', '.join(FLAGS)}"
        )
    return argument.lower()


def _load_medmnist(request: LoadRequest) -> DatasetBundle:
    from training.datasets.medmnist import load_medmnist

    assert request.root is not None, "the registry checks root_holds"
    return load_medmnist(request.root, request.argument, request.img_size)


def _gtsrb_variant(argument: str) -> str:
    if argument.lower() not in ("", "roi"):
        raise DatasetError(f"gtsrb takes no argument or :roi (crop to the sign), got {argument!r}")
    return argument.lower()


def _load_gtsrb(request: LoadRequest) -> DatasetBundle:
    from training.datasets.gtsrb import load_gtsrb

    assert request.root is not None, "the registry checks root_holds"
    return load_gtsrb(request.root, roi_crop=request.argument == "roi", seed=request.seed)


def _folder_argument(argument: str) -> str:
    if not argument:
        raise DatasetError("imagefolder needs a folder: imagefolder:DIR")
    return argument


def _load_image_folder(request: LoadRequest) -> DatasetBundle:
    from training.datasets.imagefolder import load_image_folder

    folder = Path(request.argument)
    if request.root is not None and not folder.is_absolute():
        folder = request.root / folder
    return load_image_folder(folder, seed=request.seed)


def _dicom_argument(argument: str) -> str:
    from training.datasets.dicom import parse_dicom_argument

    parse_dicom_argument(argument)  # refuses a bad spec before anything loads
    return argument


def _load_dicom(request: LoadRequest) -> DatasetBundle:
    from training.datasets.dicom import load_dicom

    return load_dicom(request.argument, request.root, seed=request.seed)


def _train_per_class(argument: str) -> str:
    if argument and not (argument.isdigit() and int(argument) > 0):
        raise DatasetError(
            f"synthetic-signs takes a positive training count per class, got {argument!r}"
        )
    return argument


def _load_synthetic_signs(request: LoadRequest) -> DatasetBundle:
    from training.datasets.imagefolder import load_image_folder
    from training.datasets.synthetic_signs import SignSetSpec, generate_sign_folder

    argument = request.argument
    sign_spec = SignSetSpec(train_per_class=int(argument)) if argument else SignSetSpec()
    # One sub-folder per generator setting, so different settings never mix their files.
    folder = (request.root or DEFAULT_SYNTHETIC_ROOT) / sign_spec.folder_name
    generate_sign_folder(folder, sign_spec)
    return load_image_folder(folder, name="synthetic-signs", hflip=False)


DATASET_KINDS: dict[str, DatasetKind] = {
    kind.name: kind
    for kind in (
        DatasetKind(
            "medmnist",
            "medmnist:FLAG",
            _load_medmnist,
            _medmnist_flag,
            root_holds="the folder holding FLAG[_SIZE].npz",
            monitor_metric="auc",
        ),
        DatasetKind(
            "gtsrb",
            "gtsrb[:roi]",
            _load_gtsrb,
            _gtsrb_variant,
            root_holds="the folder holding GTSRB/",
        ),
        DatasetKind("imagefolder", "imagefolder:DIR", _load_image_folder, _folder_argument),
        DatasetKind(
            "dicom",
            "dicom:DIR|LIST.csv[;window=C,W][;frame=N]",
            _load_dicom,
            _dicom_argument,
        ),
        DatasetKind(
            "synthetic-signs",
            "synthetic-signs[:TRAIN_PER_CLASS]",
            _load_synthetic_signs,
            _train_per_class,
        ),
    )
}


# --- using the table --------------------------------------------------------------------


def data_forms() -> str:
    return ", ".join(kind.form for kind in DATASET_KINDS.values())


def parse_data_spec(text: str) -> DataSpec:
    name, _, argument = text.strip().partition(":")
    kind = DATASET_KINDS.get(name.lower())
    if kind is None:
        raise DatasetError(f"unknown data spec {text!r}; valid forms: {data_forms()}")
    return DataSpec(kind.name, kind.parse_argument(argument))


def monitor_metric(text: str) -> Literal["acc", "auc"]:
    """The validation metric a run on this data follows (AUC for MedMNIST, as its paper)."""
    kind = DATASET_KINDS.get(text.strip().partition(":")[0].lower())
    return kind.monitor_metric if kind else "acc"


def load_dataset(
    text: str, data_root: str | Path | None = None, *, seed: int = 0, img_size: int | None = None
) -> DatasetBundle:
    """Load the dataset a ``--data`` spec names; ``data_root`` is where its files live.

    ``img_size`` picks the MedMNIST file of that resolution when there is one.
    """
    spec = parse_data_spec(text)
    kind = DATASET_KINDS[spec.kind]
    if kind.root_holds is not None and data_root is None:
        raise DatasetError(f"{kind.name} needs --data-root: {kind.root_holds}")
    root = Path(data_root) if data_root is not None else None
    return kind.load(LoadRequest(spec.argument, root, seed, img_size))
