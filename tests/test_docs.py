"""The documentation site builds offline with ``mkdocs build --strict``, and its figures exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def mkdocs_command() -> list[str]:
    """mkdocs of this interpreter's environment, or skip when the docs extra is not installed."""
    pytest.importorskip("mkdocs", reason="mkdocs is in the docs extra")
    pytest.importorskip("material", reason="mkdocs-material is in the docs extra")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings-python: docs extra")
    return [sys.executable, "-m", "mkdocs"]


@pytest.mark.slow
def test_site_builds_strict_and_offline(tmp_path: Path) -> None:
    command = mkdocs_command()
    site = tmp_path / "site"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_MKDOCS_2_WARNING": "1",
           # no proxy, no network: a plugin that fetches anything fails the build
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    result = subprocess.run([*command, "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    pages = {p.relative_to(site).as_posix() for p in site.rglob("index.html")}
    for page in ("index.html", "quickstart/index.html", "formats/index.html",
                 "reference/core/index.html", "tutorials/01-ternary-weights/index.html"):
        assert page in pages
    # the tutorial pages carry the tutorial's own source and recorded output
    html = (site / "tutorials" / "03-bitlinear" / "index.html").read_text(encoding="utf-8")
    assert "add_subtract_row" in html and "integer sum by hand" in html
    # the API reference is generated from the docstrings
    html = (site / "reference" / "core" / "index.html").read_text(encoding="utf-8")
    assert "ternarize_weights" in html and "absmean" in html.lower()
    # nothing points at a font or script on the network
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in text and "fonts.gstatic.com" not in text, page
        assert not re.search(r"<script[^>]+src=\"https?://", text), page


def test_every_figure_the_docs_show_is_committed_and_small() -> None:
    shown = set()
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", page.read_text(encoding="utf-8")):
            shown.add((page.parent / target).resolve())
    assert shown, "the docs show figures"
    for figure in shown:
        assert figure.is_file(), f"{figure} is missing (python tutorials/render_docs.py)"
        assert figure.stat().st_size < 200_000, f"{figure} is over 200 KB"


def test_every_tutorial_has_a_page_with_its_source_and_output() -> None:
    for script in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")):
        pages = list((DOCS / "tutorials").glob(f"{script.name[:2]}-*.md"))
        assert len(pages) == 1, f"{script.name}: expected one docs page"
        text = pages[0].read_text(encoding="utf-8")
        assert f'--8<-- "tutorials/{script.name}"' in text
        assert f'--8<-- "docs/tutorials/output/{script.stem}.txt"' in text
        assert (DOCS / "tutorials" / "output" / f"{script.stem}.txt").is_file()
        assert "figures/" in text, f"{pages[0].name} shows no figure"


def test_nav_lists_every_page() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in DOCS.rglob("*.md"):
        assert page.relative_to(DOCS).as_posix() in config, f"{page} is not in the nav"

