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


def imported_modules(path: Path, *, typing_only_too: bool = True) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports in functions count too);
    ``typing_only_too=False`` leaves out what ``if TYPE_CHECKING:`` blocks import."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = set() if typing_only_too else _typing_only_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _typing_only_nodes(tree: ast.Module) -> set[int]:
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for statement in node.body
        for inner in ast.walk(statement)
    }


def top_levels(path: Path) -> set[str]:
    return {name.partition(".")[0] for name in imported_modules(path)}


ARCHITECTURE = ROOT / "docs" / "architecture.md"
# A row of docs/architecture.md's layer table: | `model/` | nothing of ours | torch, ... |
LAYER_ROW = re.compile(r"^\|\s*`(\w+)/`\s*\|(?P<uses>[^|]*)\|(?P<never>[^|]*)\|\s*$")


def documented_layers() -> dict[str, set[str]]:
    """Per package, what docs/architecture.md says it never uses: the other packages of
    ours it does not name as used, plus the libraries in its "never" column."""
    layers: dict[str, tuple[set[str], set[str]]] = {}
    for line in ARCHITECTURE.read_text().splitlines():
        if match := LAYER_ROW.match(line):
            uses = set(re.findall(r"`(\w+)/`", match["uses"]))
            never = set(re.findall(r"`(\w+)`", match["never"]))
            layers[match[1]] = (uses, never)
    return {
        package: (set(PACKAGES) - {package} - uses) | never
        for package, (uses, never) in layers.items()
    }


FORBIDDEN = documented_layers()

# A string naming a module of ours (importlib.import_module("training.cli"), an entry
# point "service.run.cli:register", a uvicorn app "service.app.factory:create_app").
MODULE_BY_NAME = re.compile(r"^(?P<top>\w+)(\.\w+)+(:\w+)?$")


def named_top_levels(path: Path) -> set[str]:
    """Top-level modules a file reaches by any means: imports, and strings naming modules."""
    named = {
        match["top"] for _, text in spelled_strings(path) if (match := MODULE_BY_NAME.match(text))
    }
    return top_levels(path) | named


def test_the_layer_table_covers_every_package() -> None:
    assert set(FORBIDDEN) == set(PACKAGES), f"docs/architecture.md's layer table: {FORBIDDEN}"


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_use_only_the_layers_the_architecture_names(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(named_top_levels(path) & FORBIDDEN[package])
        for path in sources(package)
        if named_top_levels(path) & FORBIDDEN[package]
    }
    assert not offenders, f"{package}/ must not use {sorted(FORBIDDEN[package])}: {offenders}"


def test_the_checker_sees_lazy_imports_and_modules_named_in_strings(tmp_path: Path) -> None:
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from training.config import TrainConfig\n")
    assert top_levels(source) == {"training"}
    by_name = tmp_path / "by_name.py"
    by_name.write_text('import importlib\nimportlib.import_module("service.run.cli")\n')
    assert "service" in named_top_levels(by_name)


# Paths the architecture page names: `service/app/state.py`, `model/decoding/`.
DOCUMENTED_PATH = re.compile(r"(?<![\w/.])((?:model|service|training)/[\w/]*(?:\.py)?)")


def test_every_module_the_architecture_names_exists() -> None:
    named = set(DOCUMENTED_PATH.findall(ARCHITECTURE.read_text()))
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert named and not missing, f"docs/architecture.md names modules that are gone: {missing}"


def test_every_service_folder_is_on_the_architecture_page() -> None:
    text = ARCHITECTURE.read_text()
    folders = sorted(
        str(path.parent.relative_to(ROOT)) + "/"
        for path in (ROOT / "service").glob("*/__init__.py")
    )
    absent = [folder for folder in folders if folder not in text]
    assert not absent, f"docs/architecture.md does not describe {absent}"


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


@pytest.mark.parametrize("package", PACKAGES)
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


# service/'s folders, lowest first (docs/architecture.md, "The service, folder by folder").
# A module imports only from its own folder or lower ones; the routes (probes and the page
# among them), the factory and the runners sit above the adapters they gather.
SERVICE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("service.plumbing", "service.loadgen"),
    ("service.inference",),
    ("service.app",),
    ("service.batch",),
    ("service.protocols", "service.app.probes", "service.app.page"),
    ("service.app.routes", "service.app.factory"),
    ("service.run",),
)


def service_layer(module: str) -> int | None:
    """The layer of a service module: the longest matching prefix wins."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(SERVICE_LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(f"{prefix}.")) and (
                best is None or len(prefix) > best[1]
            ):
                best = (index, len(prefix))
    return None if best is None else best[0]


def runtime_imports(path: Path) -> set[str]:
    """Modules ``path`` imports at run time: ``if TYPE_CHECKING:`` blocks left out."""
    return imported_modules(path, typing_only_too=False)


def test_service_folders_import_downward_only() -> None:
    upward = []
    for path in sources("service"):
        own = service_layer(module_name(path))
        if own is None:
            continue
        for target in sorted(runtime_imports(path)):
            layer = service_layer(target)
            if layer is not None and layer > own:
                upward.append(f"{module_name(path)} -> {target}")
    assert not upward, "service/ imports upward:\n" + "\n".join(upward)


def test_the_layer_check_orders_folders_and_skips_typing_only_imports(tmp_path: Path) -> None:
    assert service_layer("service.plumbing.metrics") < service_layer("service.app.repository")  # type: ignore[operator]
    assert service_layer("service.app.factory") > service_layer("service.protocols.v1.predict")  # type: ignore[operator]
    source = tmp_path / "typed.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import service.app.state\n"
        "import service.plumbing.errors\n"
    )
    assert "service.app.state" not in runtime_imports(source)
    assert "service.plumbing.errors" in runtime_imports(source)
