"""The model repository layout, ``<root>/<name>/<version>/model.onnx`` (Triton's).

Export writes into it, ``rectifier pull`` fills it from the MLflow registry and the service
reads it; all of them ask this module for paths. Torch- and onnx-free: the serving image
copies it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

# Where every command looks for and writes the repository unless told otherwise.
DEFAULT_ROOT = Path("models")
MODEL_FILE = "model.onnx"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_model_name(name: str) -> bool:
    return bool(MODEL_NAME.match(name))


def model_file(root: Path, name: str, version: int) -> Path:
    """Where version ``version`` of model ``name`` lives under ``root``."""
    if not is_model_name(name):
        raise ValueError(f"{name!r} is not a model name: use letters, digits, '.', '_', '-'")
    if version < 1:
        raise ValueError(f"model versions start at 1, got {version}")
    return Path(root) / name / str(version) / MODEL_FILE


def beside_model(model_path: Path, file_name: str) -> Path:
    """A file the card names (the OOD statistics) in the model file's own folder."""
    if Path(file_name).name != file_name or not MODEL_NAME.match(file_name):
        raise ValueError(f"{file_name!r} is not a plain file name")
    return Path(model_path).parent / file_name


def next_version(root: Path, name: str) -> int:
    """One more than the highest version folder of ``name`` (1 for a new model)."""
    model_dir = Path(root) / name
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def newest_model_file(model_dir: Path) -> Path | None:
    """The model file of the highest version under one model's folder (None: no version)."""
    versions = [
        int(p.name)
        for p in Path(model_dir).glob("*")
        if p.name.isdigit() and (p / MODEL_FILE).is_file()
    ]
    return Path(model_dir) / str(max(versions)) / MODEL_FILE if versions else None


def discover(root: Path) -> list[tuple[str, int, Path]]:
    """(name, version, path) of every ``<name>/<version>/model.onnx`` under ``root``."""
    found = []
    for model_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        if not is_model_name(model_dir.name):
            log.warning("skipping %s: not a valid model name", model_dir)
            continue
        for version_dir in sorted(p for p in model_dir.iterdir() if p.is_dir()):
            if not version_dir.name.isdigit() or int(version_dir.name) < 1:
                log.warning("skipping %s: versions are folders named 1, 2, ...", version_dir)
                continue
            found.append((model_dir.name, int(version_dir.name), version_dir / MODEL_FILE))
    return found
