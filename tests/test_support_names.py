"""The tests' import path shadows nothing installed.

pytest puts ``tests/support/`` first on ``sys.path`` (pyproject.toml, ``pythonpath``). A helper
module there named like an installed distribution's top-level package would be imported instead
of it by every library the tests load: a helper called ``kernels.py`` once broke transformers,
which imports the PyPI package ``kernels``.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

SUPPORT_DIR = Path(__file__).parent / "support"


def importable_names(folder: Path) -> set[str]:
    """Top-level module and package names that ``folder`` on sys.path makes importable."""
    names = {path.stem for path in folder.glob("*.py")}
    names |= {path.name for path in folder.iterdir() if path.is_dir() and path.name.isidentifier()}
    return names


def test_support_holds_only_the_helper_package() -> None:
    assert importable_names(SUPPORT_DIR) == {"minibitnet_testing"}


def test_no_helper_name_is_an_installed_package() -> None:
    installed = importlib.metadata.packages_distributions()  # top-level name -> distributions
    clashes = {name: installed[name] for name in importable_names(SUPPORT_DIR) if name in installed}
    assert not clashes, f"tests/support/ shadows installed packages: {clashes}"


def test_a_clash_would_be_found() -> None:
    installed = importlib.metadata.packages_distributions()
    assert "numpy" in installed  # the check above looks in the right table
