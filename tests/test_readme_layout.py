"""README's layout tree names every module of the package, and nothing that is not there."""

from __future__ import annotations

from pathlib import Path

import minibitnet

README = Path(__file__).parents[1] / "README.md"
PACKAGE_DIR = Path(minibitnet.__file__).parent


def layout_tree() -> list[str]:
    """The lines of the ```text block under '## Layout'."""
    section = README.read_text(encoding="utf-8").split("## Layout\n", 1)[1]
    return section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()


def files_named(lines: list[str]) -> set[str]:
    """Paths relative to minibitnet/ of the .py files the tree names: the words that open a line
    and end in .py (several may share a line); a word ending in / opens a folder."""
    named = set()
    folders: list[tuple[int, str]] = []  # (indent, name) of the enclosing folders
    for line in lines[1:]:  # the first line is minibitnet/ itself
        indent = len(line) - len(line.lstrip())
        folders = [(i, name) for i, name in folders if i < indent]
        words = line.split()
        if words and words[0].endswith("/"):
            folders.append((indent, words[0]))
            continue
        prefix = "".join(name for _, name in folders)
        for word in words:
            if not word.endswith(".py"):
                break
            named.add(prefix + word)
    return named


def test_the_tree_names_exactly_the_modules() -> None:
    # a folder's __init__.py is described by the folder's own line
    actual = {path.relative_to(PACKAGE_DIR).as_posix() for path in PACKAGE_DIR.rglob("*.py")
              if path.name != "__init__.py" or path.parent == PACKAGE_DIR}
    named = files_named(layout_tree())
    assert sorted(named - actual) == [], "named in README's layout but not in the package"
    assert sorted(actual - named) == [], "in the package but missing from README's layout"


def test_the_parser_reads_folders_and_shared_lines() -> None:
    lines = ["minibitnet/", "  a.py   about a", "  sub/   a folder", "    b.py  c.py", "    d.py  d",
             "  e.py   e"]
    assert files_named(lines) == {"a.py", "sub/b.py", "sub/c.py", "sub/d.py", "e.py"}
