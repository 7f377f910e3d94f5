"""The README's "Use from Python" example runs as written, so it cannot drift from the API."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def python_example() -> str:
    """The first ```python block of the README's "Use from Python" section."""
    section = README.read_text(encoding="utf-8").split("## Use from Python", 1)[1]
    found = re.search(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    assert found is not None, f"{README}: no ```python block under 'Use from Python'"
    return found.group(1)


def test_use_from_python_runs_as_written(tmp_path: Path) -> None:
    # subtle: a fresh interpreter, so the example's own imports are all it has (in this process,
    # other tests may already have imported minibitnet.tokenizer for it)
    result = subprocess.run([sys.executable, "-c", python_example()], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "the example prints the generated text"
