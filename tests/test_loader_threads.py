"""load() shares the cores between the kernel and NumPy's BLAS (threadpoolctl), in a fresh
process each, since the limit is process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("threadpoolctl")

PROBE = """
import json, numpy, minibitnet, threadpoolctl
def blas():
    return sorted({{i["num_threads"] for i in threadpoolctl.threadpool_info()
                    if i["user_api"] == "blas"}})
before = blas()
minibitnet.load(backend={backend!r}, threads={threads!r})
print(json.dumps({{"before": before, "after": blas()}}))
"""


def blas_threads(tmp_path, backend: str, threads: int | None) -> dict[str, list[int]]:
    result = subprocess.run([sys.executable, "-c", PROBE.format(backend=backend, threads=threads)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2",
                                 "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_kernel_with_its_own_threads_gets_the_cores_and_blas_one(tmp_path):
    pytest.importorskip("numba")
    assert blas_threads(tmp_path, "fast:numba", 2) == {"before": [2], "after": [1]}


def test_an_explicit_thread_count_caps_blas(tmp_path):
    assert blas_threads(tmp_path, "fast:lut", 1) == {"before": [2], "after": [1]}


def test_without_a_count_blas_keeps_its_threads(tmp_path):
    assert blas_threads(tmp_path, "reference", None) == {"before": [2], "after": [2]}
