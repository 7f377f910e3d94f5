"""The package's shape: imports run one way between the layers, and no module imports itself
back through a circle.

Every import statement in the source counts, those inside functions and under
``typing.TYPE_CHECKING`` too: a circle a type checker sees is still a circle a reader must untangle.
The layers, from the bottom (a module may import its own layer and the layers below it):

    errors, families, files, folders, pages,   the shared vocabulary
    config
    core/                                      the readable transformer, NumPy only
    kernels/ (registry, dense, adapters)       the ternary kernels; kernels/mypyc/ and
                                               kernels/numba/ import nothing of the package
    formats/, tokenizer/                       files on disk -> what core takes
    loader, tools/, train/                     built on all of the above
    commands/, cli                             the command line
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import minibitnet

PACKAGE_DIR = Path(minibitnet.__file__).parent
BOTTOM = {"minibitnet.errors", "minibitnet.families", "minibitnet.files",
          "minibitnet.folders", "minibitnet.pages", "minibitnet.config"}
# layer -> the layers it may import (besides the bottom one and itself)
ALLOWED = {
    "bottom": set(),
    "core": set(),
    "kernels": {"core"},
    "formats": {"core", "kernels"},
    "tokenizer": {"core", "formats"},
    "loader": {"core", "kernels", "formats", "tokenizer"},
    "tools": {"core", "kernels", "formats", "tokenizer", "loader"},
    "train": {"core", "kernels", "formats", "tokenizer", "loader", "tools"},
    "commands": {"core", "kernels", "formats", "tokenizer", "loader", "tools", "train"},
    "cli": {"commands"},
    "api": {"core", "loader"},
}


def module_files() -> dict[str, Path]:
    """Dotted module name -> its source file, for every module of the installed package."""
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports (the longest known prefix of each name)."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
            else:
                base = []
            head = ".".join([*base, *([node.module] if node.module else [])])
            targets = [head, *(f"{head}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def layer_of(module: str) -> str:
    if module == "minibitnet":  # __init__.py: the public names, from wherever they live
        return "api"
    if module in BOTTOM:
        return "bottom"
    return module.split(".")[1]


def find_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every back edge of a depth-first walk, as the circle it closes."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []
    circles = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return circles


def test_the_walk_sees_imports() -> None:
    graph = import_graph()
    assert "minibitnet.core.bitlinear" in graph["minibitnet.core.model"]
    assert "minibitnet.errors" in graph["minibitnet.config"]


def test_a_circle_would_be_found() -> None:
    assert find_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle() -> None:
    assert find_circles(import_graph()) == []


def test_imports_run_down_the_layers() -> None:
    wrong = []
    for module, targets in import_graph().items():
        layer = layer_of(module)
        for target in targets:
            target_layer = layer_of(target)
            if target_layer not in {"bottom", layer, *ALLOWED[layer]}:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_core_imports_only_core_errors_and_config() -> None:
    # the reference runs with NumPy alone: no kernel, no file reader, no memory-map handling
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("minibitnet.core"):
            outside = {t for t in targets if not t.startswith("minibitnet.core")}
            assert outside <= {"minibitnet.errors", "minibitnet.config"}, (module, outside)


def inside(module: str, package: str) -> bool:
    """``module`` is ``package`` or one of its modules (not a sibling such as package_x)."""
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("package", ["minibitnet.kernels.mypyc", "minibitnet.kernels.numba"])
def test_accelerator_folders_import_nothing_of_the_package(package: str) -> None:
    # mypyc kernels take plain buffers, numba kernels NumPy arrays; an adapter beside the
    # registry converts, so each folder stands alone
    graph = import_graph()
    assert package in graph
    for module, targets in graph.items():
        if inside(module, package):
            assert {t for t in targets if not inside(t, package)} == set(), module


def test_the_top_level_stays_small() -> None:
    top_level = sorted(path.name for path in PACKAGE_DIR.glob("*.py"))
    assert len(top_level) <= 12, top_level


def test_the_numpy_model_runs_without_any_compiled_module(tmp_path: Path) -> None:
    """core/ with its reference kernel is the whole transformer in NumPy: reading a checkpoint
    and a forward pass in a fresh process import no kernel of kernels/, no mypyc runtime
    (librt) and no numba. (minibitnet.load imports the kernel registry, which names them all.)"""
    import os
    import subprocess
    import sys

    from minibitnet_testing.builders import build_checkpoint

    folder = build_checkpoint(tmp_path / "model")
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from minibitnet.core.bitlinear import ReferenceKernel\n"
        "from minibitnet.core.model import Model\n"
        "from minibitnet.formats.detect import read_model\n"
        f"config, weights, _ = read_model({str(folder)!r})\n"
        "model = Model(config, weights, ReferenceKernel())\n"
        "assert np.isfinite(model.logits([1, 2, 3])).all()\n"
        "print(sorted(name for name in sys.modules\n"
        "             if name.split('.')[0] in ('librt', 'numba', 'mypy_extensions')\n"
        "             or name.startswith('minibitnet.kernels')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=os.environ, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
