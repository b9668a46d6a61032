"""Fixtures shared across the suite: small exported models in a Triton-layout repository,
and ``figures`` (a test's measured figures, printed past pytest's capture)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.models import ExportedModel, export_model_repo


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExportedModel]:
    """A model repository with an RGB model ``rgb`` and a grayscale model ``gray``.

    Returns name -> ExportedModel; the repository root is ``onnx_path.parents[2]``.
    """
    return export_model_repo(
        tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("checkpoints")
    )


@pytest.fixture(scope="session")
def model_repo_dir(model_repo: dict[str, ExportedModel]) -> Path:
    return next(iter(model_repo.values())).onnx_path.parents[2]


@pytest.fixture
def figures(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """``figures(text)`` prints past pytest's capture, so the closing numbers (cases
    answered, load, memory, shutdown) show in every CI log."""

    def show(text: str) -> None:
        with capsys.disabled():
            sys.stdout.write(f"\n{text.strip()}\n")

    return show
