"""Every tutorial page ends with a "Try this" section of two or three experiments, each a one-line
change to the tutorial script; every experiment, applied, still runs to the end.

The format (one numbered item per experiment; the diff indented inside the item)::

    ## Try this

    1. **Int4 activations.** What to look for, and roughly by how much.

        ```diff title="tutorials/02_int8_activations.py"
        -ACTIVATION_BITS = 8
        +ACTIVATION_BITS = 4
        ```

The `-` line is the script's line exactly as written (indentation included after the marker) and
occurs exactly once in it, so the change a reader makes by hand is the one tested here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]-*.md"))

SECTION = re.compile(r"^## Try this[ \t]*\n(.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
ITEM = re.compile(r"^\d+\. \*\*(.+?)\*\*", re.MULTILINE)
DIFF = re.compile(r'^( *)```diff title="([^"]+)"[ \t]*\n(.*?)^\1```[ \t]*$',
                  re.MULTILINE | re.DOTALL)

# Runs a script's source, read from stdin, as `python SCRIPT ARGS...` would: as __main__, with
# __file__ and sys.path[0] naming the script, so relative data paths keep working.
RUNNER = """\
import os, sys
path = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(path)
code = compile(sys.stdin.read(), path, "exec")
exec(code, {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__})
"""


@dataclass(frozen=True)
class Experiment:
    """One numbered item of a page's "Try this" section, and the diffs it holds."""

    number: str                            # the tutorial's number, "02"
    title: str                             # "Int4 activations."
    diffs: tuple[tuple[str, str], ...]     # (script named in the title, body of the block)

    @property
    def id(self) -> str:
        """"02-int4-activations": the number and the title, as a pytest id."""
        return f"{self.number}-" + re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def try_this_section(page: Path) -> str | None:
    """The text of the page's "## Try this" section, or None where it has none."""
    found = SECTION.search(page.read_text(encoding="utf-8"))
    return found.group(1) if found else None


def experiments_of(page: Path) -> list[Experiment]:
    """The numbered items of the page's "Try this" section, in order ([] without one)."""
    section = try_this_section(page) or ""
    titles = list(ITEM.finditer(section))
    ends = [title.start() for title in titles[1:]] + [len(section)]
    found = []
    for title, end in zip(titles, ends):
        item = section[title.start():end]
        diffs = tuple((script, _dedent(body, len(indent)))
                      for indent, script, body in DIFF.findall(item))
        found.append(Experiment(page.name[:2], title.group(1), diffs))
    return found


def _dedent(body: str, width: int) -> str:
    """The block's lines with the fence's indentation taken off."""
    return "\n".join(line[width:] for line in body.splitlines())


def one_line_change(experiment: Experiment) -> tuple[Path, str, str]:
    """(script, line removed, line added) of a well-formed experiment; fails on any other."""
    assert len(experiment.diffs) == 1, f"{experiment.id}: expected one diff block"
    script, body = experiment.diffs[0]
    removed = [line[1:] for line in body.splitlines() if line.startswith("-")]
    added = [line[1:] for line in body.splitlines() if line.startswith("+")]
    assert len(removed) == 1 and len(added) == 1, (
        f"{experiment.id}: expected one '-' line and one '+' line, got {body!r}")
    return ROOT / script, removed[0], added[0]


ALL_EXPERIMENTS = [e for page in PAGES for e in experiments_of(page)]


def test_pages_are_found() -> None:
    assert len(PAGES) >= 13


@pytest.mark.parametrize("page", PAGES, ids=[p.name[:2] for p in PAGES])
def test_page_has_two_or_three_experiments(page: Path) -> None:
    assert try_this_section(page) is not None, f"{page.name} has no '## Try this' section"
    experiments = experiments_of(page)
    assert 2 <= len(experiments) <= 3, (
        f"{page.name}: expected 2 or 3 numbered experiments, found {len(experiments)}")
    for experiment in experiments:
        script, removed, added = one_line_change(experiment)
        assert script.parent.name == "tutorials" and script.name.startswith(page.name[:2] + "_"), (
            f"{experiment.id}: the diff names {script.name}, not this page's tutorial")
        assert removed != added, f"{experiment.id}: the '+' line changes nothing"


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ALL_EXPERIMENTS, ids=[e.id for e in ALL_EXPERIMENTS])
def test_experiment_runs(experiment: Experiment, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the tutorials draw with matplotlib (docs extra)")
    script, removed, added = one_line_change(experiment)
    lines = script.read_text(encoding="utf-8").split("\n")
    assert lines.count(removed) == 1, (
        f"{experiment.id}: {removed!r} occurs {lines.count(removed)} times in {script.name}, "
        "expected exactly once")
    changed = "\n".join(added if line == removed else line for line in lines)
    env = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script), "--out", str(tmp_path / "figures")],
        input=changed, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0, f"{experiment.id} failed:\n{result.stderr[-3000:]}"
