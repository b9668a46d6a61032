"""Fixtures shared across the suite: small exported models in a Triton-layout repository,
and ``figures`` (a test's measured figures, printed past pytest's capture).

With ``--tier NAME`` (``make test-fast`` passes ``--tier test-fast``) the run ends with
``NAME: ran N of M tests``: N selected by the tier's ``-m`` expression, M in the whole suite.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.models import ExportedModel, export_model_repo


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tier",
        default=None,
        help="name of the test tier this run is (printed with how many tests it ran of all)",
    )


_COUNTS: dict[str, int] = {}


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the whole suite
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _COUNTS["suite"] = len(items)
    _COUNTS["docker"] = sum(1 for item in items if item.get_closest_marker("docker"))


def pytest_collection_finish(session: pytest.Session) -> None:
    _COUNTS["selected"] = len(session.items)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    tier = config.getoption("--tier")
    if tier and "suite" in _COUNTS and not config.option.collectonly:
        terminalreporter.write_line(
            f"{tier}: ran {_COUNTS['selected']} of {_COUNTS['suite']} tests "
            f"(make test runs {_COUNTS['suite'] - _COUNTS['docker']}: all but the docker tier)",
            bold=True,
        )


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
