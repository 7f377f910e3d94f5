"""Every file of the repository that the docs, tutorials, docstrings and scripts name exists.

``mkdocs build --strict`` checks links, not prose: after a module moves, a sentence such as
"defined in ``minibitnet/packing.py``" would go on pointing a reader at a file that is gone.
Paths are those starting at the repository's root with ``minibitnet/`` or ``tests/``; the
README's list of moved modules names old paths on purpose and is left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a file by its extension, or a folder by its trailing slash ("ratio minibitnet/bitnet.cpp" in a
# table heading is no path)
NAMED_PATH = re.compile(
    r"(?<![\w./-])((?:minibitnet|tests)/[\w./-]*(?:\.(?:py|md|json|txt|png)\b|/))")
MOVED_MODULES_HEADING = "### Changelog: moved modules"


def _sources() -> list[Path]:
    found = [ROOT / "README.md", ROOT / ".ci" / "run", ROOT / "pyproject.toml", ROOT / "setup.py"]
    for folder, pattern in (("docs", "**/*.md"), ("tutorials", "*.py"), ("minibitnet", "**/*.py"),
                            ("tests", "**/*.py")):
        found += sorted((ROOT / folder).glob(pattern))
    here = Path(__file__).resolve()  # its own examples name files that do not exist
    return [path for path in found if path.is_file() and path.resolve() != here]


def _text_to_check(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.name == "README.md" and MOVED_MODULES_HEADING in text:
        before, _, after = text.partition(MOVED_MODULES_HEADING)
        _, heading_break, rest = after.partition("\n#")  # the section ends at the next heading
        text = before + (heading_break + rest if heading_break else "")
    return text


def named_paths(text: str) -> list[str]:
    """The repository paths ``text`` names."""
    return [match for match in NAMED_PATH.findall(text) if "*" not in match]


def test_the_pattern_finds_paths_in_prose_and_code() -> None:
    text = "defined in ``minibitnet/core/packing.py``, see tests/kernels/ and minibitnet/x.py."
    assert named_paths(text) == ["minibitnet/core/packing.py", "tests/kernels/", "minibitnet/x.py"]


@pytest.mark.skipif(not (ROOT / "docs").is_dir(), reason="runs in a clone of the repository")
def test_every_named_path_exists() -> None:
    if not (ROOT / "minibitnet" / "core").is_dir():
        pytest.skip("the package is installed, not run from a clone")
    missing = [f"{path.relative_to(ROOT)}: {named}"
               for path in _sources() for named in named_paths(_text_to_check(path))
               if not (ROOT / named).exists()]
    assert missing == []
