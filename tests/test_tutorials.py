"""Every tutorial runs, on its own, in seconds, and writes the figures its docs page shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the tutorials draw with matplotlib (docs extra)")

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
DOCS_TUTORIALS = ROOT / "docs" / "tutorials"


def figures_shown(number: str) -> set[str]:
    """The figure files that the docs page of tutorial ``number`` includes."""
    names: set[str] = set()
    for page in DOCS_TUTORIALS.glob(f"{number}-*.md"):
        names |= set(re.findall(r"figures/([\w.-]+\.png)", page.read_text(encoding="utf-8")))
    return names


def test_there_are_twelve_tutorials() -> None:
    assert [t.name[:2] for t in TUTORIALS] == [f"{n:02d}" for n in range(1, 13)]


@pytest.mark.parametrize("script", TUTORIALS, ids=[t.stem for t in TUTORIALS])
def test_tutorial_runs_and_draws(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "figures")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "a tutorial prints what it shows"
    drawn = {p.name for p in (tmp_path / "figures").glob("*.png")}
    number = script.name[:2]
    assert any(name.startswith(number) for name in drawn), f"{script.name} drew no figure"
    shown = figures_shown(number)
    assert shown, f"no docs page shows a figure of {script.name}"
    assert shown <= drawn, f"the docs page shows figures the tutorial did not draw: {shown - drawn}"
    for name in drawn:
        assert (tmp_path / "figures" / name).stat().st_size < 200_000, f"{name} is over 200 KB"
