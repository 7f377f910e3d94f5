"""Every tutorial runs, on its own, in seconds, writes the figures its docs page shows and prints
what docs/tutorials/output/ recorded for it (tutorials/render_docs.py records both)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from minibitnet.kernels import mypyc as fast
from minibitnet.kernels.numba_kernel import numba_missing

pytest.importorskip("matplotlib", reason="the tutorials draw with matplotlib (docs extra)")

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
DOCS_TUTORIALS = ROOT / "docs" / "tutorials"
RECORDED = DOCS_TUTORIALS / "output"

# ---- recorded output: exact, but for what this machine measured ----

# Each pattern masks one kind of figure measured on the machine that ran the tutorial, in the
# recorded output and the fresh one alike; every other character, computed numbers included,
# must match.
NUMBER = r"(?<![\w.])\d+(?:\.\d+)?"  # not the digits of a name such as FP16 or 2B4T
# a time or a speed with its unit: "0.6 s", "158.9 ms", "70.72 ns/weight", "0.41 tokens/s",
# "18.7 GB/s"
TIMING = re.compile(rf"{NUMBER}(?= ?(?:s|ms|ns/weight|tokens/s|tok/s|GB/s)\b)")
# a share of a measured time, on a line that shows one: "154.51 ms   97.3%"
SHARE = re.compile(rf"{NUMBER}(?=%)")
# memory the operating system reports resident: "resident memory +198 MB"
RESIDENT = re.compile(rf"(?<=resident memory \+){NUMBER}")
# speeds in a table by rows, the unit in its caption: "fast:lut   8 rows    3.038"
PER_ROWS = re.compile(rf"(\d+ rows +){NUMBER}")
# a table heading that names speeds in columns below it: "... FP16 tok/s  2-bit tok/s"
SPEED_HEADING = "tok/s"
# Not measured, but not the same everywhere either: Hypothesis mixes into its draws constants it
# finds in local source (not in site-packages), so a derandomized run draws other examples when
# minibitnet is installed editable. Tutorial 11's counts of what was drawn, and the widest width
# drawn, are masked; the shrunk counterexample, the property's verdicts and the number of
# examples are not.
DRAWN = re.compile(rf"{NUMBER}(?= of them not a multiple)|(?<=after ){NUMBER}(?= examples in all)"
                   rf"|(?<=\.\.)\d+(?=, {NUMBER} of them not a multiple)")


def mask_measured(text: str) -> str:
    """``text`` with each measured figure, and the spaces before it, replaced by ' #'.

    The columns of a table headed by SPEED_HEADING are masked where a number ends in the column
    where the heading ends (the tables are right-aligned); the table ends at the first line
    that is blank or not indented.
    """
    lines = []
    speed_columns: set[int] = set()  # end columns of the speed headings of the current table
    for line in text.split("\n"):
        if not line.startswith(" "):
            speed_columns = set()
        if SPEED_HEADING in line and not TIMING.search(line):
            speed_columns = {m.end() for m in re.finditer(re.escape(SPEED_HEADING), line)}
        elif speed_columns:
            line = re.sub(NUMBER, lambda m: "#" if m.end() in speed_columns else m.group(), line)
        if TIMING.search(line):
            line = SHARE.sub("#", TIMING.sub("#", line))
        line = DRAWN.sub("#", PER_ROWS.sub(r"\1#", RESIDENT.sub("#", line)))
        lines.append(re.sub(r" +#", " #", line))  # the padding of a column follows its width
    return "\n".join(lines)


def as_recorded(stdout: str, figures: Path) -> str:
    """A fresh run's output written as render_docs.py records it: the figures folder it passes
    (docs/tutorials/figures), and each temporary folder as $TMPDIR (render_docs.py's rule)."""
    text = stdout.replace(str(figures), "docs/tutorials/figures")
    return re.sub(re.escape(tempfile.gettempdir()) + r"/[\w.-]+", "$TMPDIR", text)


def test_masking_keeps_computed_figures() -> None:
    """Hand-derived: measured figures become '#', computed ones stay, in the tutorials' forms."""
    text = "\n".join([
        "56 MB written in 0.6 s",
        "backend 'fast': load 0.17 s, resident memory +72 MB at load (file 56 MB, mapped)",
        "    ternary matmuls         19.41 ms   88.1%",
        "  fast              0.35 s per token (  2.82 tokens/s); ternary matmuls 82%",
        "  fast:lut           8 rows    3.038     32 rows    0.841",
        "measured copy bandwidth on this machine: 18.7 GB/s (read + write of a 128 MiB array)",
        "  model  FP16 GB  FP16 tok/s",
        "   125M     0.26       72.90",
        "   1.5B     3.01        6.23",
        "The bound is an upper limit: 72.90",
        "   -1:  32.8% of the weights",
        "  reference          1.225 ns/weight",
        "24 tokens: 0.11 s with the cache (same tokens: True)",
        "  fast  holds (150 examples, widths 1..640, 123 of them not a multiple of 64, 40 or 5)",
        "  first failure at example 28; after 149 examples in all, shrunk to: W (4, 357)",
    ])
    assert mask_measured(text).split("\n") == [
        "56 MB written in # s",
        "backend 'fast': load # s, resident memory +# MB at load (file 56 MB, mapped)",
        "    ternary matmuls # ms #%",
        "  fast # s per token ( # tokens/s); ternary matmuls #%",
        "  fast:lut           8 rows #     32 rows #",
        "measured copy bandwidth on this machine: # GB/s (read + write of a 128 MiB array)",
        "  model  FP16 GB  FP16 tok/s",
        "   125M     0.26 #",
        "   1.5B     3.01 #",
        "The bound is an upper limit: 72.90",
        "   -1:  32.8% of the weights",
        "  reference # ns/weight",
        "24 tokens: # s with the cache (same tokens: True)",
        "  fast  holds (150 examples, widths 1..#, # of them not a multiple of 64, 40 or 5)",
        "  first failure at example 28; after # examples in all, shrunk to: W (4, 357)",
    ]


def figures_shown(number: str) -> set[str]:
    """The figure files that the docs page of tutorial ``number`` includes."""
    names: set[str] = set()
    for page in DOCS_TUTORIALS.glob(f"{number}-*.md"):
        names |= set(re.findall(r"figures/([\w.-]+\.png)", page.read_text(encoding="utf-8")))
    return names


def test_there_are_fifteen_tutorials() -> None:
    assert [t.name[:2] for t in TUTORIALS] == [f"{n:02d}" for n in range(1, 16)]


@pytest.mark.slow
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
    if not fast.is_compiled():
        pytest.skip("ran and drew; output not compared: it was recorded with the compiled kernels")
    if numba_missing() is not None:
        pytest.skip("ran and drew; output not compared: it was recorded with numba installed "
                    "(the test extra), whose backend the tutorials list")
    recorded = (RECORDED / f"{script.stem}.txt").read_text(encoding="utf-8")
    fresh = as_recorded(result.stdout, tmp_path / "figures")
    assert mask_measured(fresh) == mask_measured(recorded), (
        f"docs/tutorials/output/{script.stem}.txt is stale: re-record it with "
        f"`python tutorials/render_docs.py {number}`")
