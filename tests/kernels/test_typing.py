"""minibitnet/kernels/mypyc is the input of mypyc: it must pass mypy --strict (skipped without mypy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import minibitnet

pytest.importorskip("mypy")


@pytest.mark.slow
def test_fast_is_mypy_strict_clean(tmp_path):
    # Type-check the source tree when the tests run from a checkout; an installed copy has the
    # same .py files next to its compiled modules.
    source = Path(__file__).resolve().parents[2] / "minibitnet" / "kernels" / "mypyc"
    if not source.is_dir():
        source = Path(minibitnet.__file__).parent / "kernels" / "mypyc"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--warn-unreachable",
         "--follow-imports=silent", "--cache-dir", str(tmp_path / "mypy-cache"), str(source)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
