"""The shape of the code, read from the source with ``ast``: imports run down the layers
(service and training above model), training modules import no cycle, and the run folder's
file names are spelled in one module only."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from training import run_folder

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "service", "training")


def sources(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports in functions count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def top_levels(path: Path) -> set[str]:
    return {name.partition(".")[0] for name in imported_modules(path)}


FORBIDDEN = {
    "model": {"training", "service"},
    "service": {"training", "torch", "torchvision"},
    "training": {"service"},
}


@pytest.mark.parametrize("package", list(FORBIDDEN))
def test_imports_run_down_the_layers(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(top_levels(path) & FORBIDDEN[package])
        for path in sources(package)
        if top_levels(path) & FORBIDDEN[package]
    }
    assert not offenders, f"{package}/ must not import {sorted(FORBIDDEN[package])}: {offenders}"


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from training.config import TrainConfig\n")
    assert top_levels(source) == {"training"}


def _import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.mark.parametrize("package", ["model", "training"])
def test_no_import_cycle_between_modules(package: str) -> None:
    modules = {module_name(path): path for path in sources(package)}
    graph = {
        name: {m for m in imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own modules is not a cycle between modules.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(f"{m}.")}
    assert _import_cycle(graph) is None, _import_cycle(graph)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _import_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


RUN_FOLDER_NAMES = re.compile(
    "|".join(
        re.escape(name)
        for name in (
            run_folder.CONFIG,
            run_folder.BEST,
            run_folder.LAST,
            run_folder.METRICS,
            run_folder.REPORT,
            "learning_curves.png",
            "confusion_matrix.png",
            "label_auc.png",
            "dead_units.png",
        )
    )
)


def spelled_strings(path: Path) -> Iterator[tuple[int, str]]:
    """String literals in code (docstrings and other bare string statements excluded)."""
    tree = ast.parse(path.read_text(), str(path))
    bare = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in bare:
            yield node.lineno, node.value


def test_run_folder_names_are_spelled_only_in_the_run_folder_module() -> None:
    owner = ROOT / "training" / "run_folder.py"
    spelled = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sources(*PACKAGES, "bench", "tests")
        if path not in (owner, Path(__file__))
        for line, text in spelled_strings(path)
        if RUN_FOLDER_NAMES.search(text)
    ]
    assert not spelled, "ask training.run_folder for these paths:\n" + "\n".join(spelled)


def test_the_name_check_reads_code_but_not_docstrings(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text('"""Writes best.pt."""\npath = run / "best.pt"\n')
    assert [text for _, text in spelled_strings(source)] == ["best.pt"]
