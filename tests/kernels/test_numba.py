"""The numba kernel (fast:numba): the exact integer product from the checkpoint's packed bytes, on
any number of threads, compiled or run as plain Python, and with numba's cache folder unwritable.

The numba kernel is also in the kernel parametrisation (minibitnet_testing.kernel_cases), so
tests/kernels/test_kernels.py checks it beside every other kernel. What numba itself must not
break is checked here: threads, NUMBA_DISABLE_JIT=1 and the disk cache, each of the last two in a
fresh process because numba reads its environment once, at import. What happens without numba
is in tests/kernels/test_numba_missing.py (it runs without numba too).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

numba = pytest.importorskip("numba", reason="fast:numba needs numba (the numba extra)")

from minibitnet.core.bitlinear import ternary_matmul as reference_matmul  # noqa: E402
from minibitnet.core.packing import pack_ternary, unpack_ternary  # noqa: E402
from minibitnet.errors import ArgumentError  # noqa: E402
from minibitnet.kernels.numba import ternary  # noqa: E402
from minibitnet.kernels.numba_kernel import NumbaKernel  # noqa: E402
from minibitnet.kernels.registry import get_backend  # noqa: E402
from minibitnet_testing.strategies import int8_arrays, ternary_matrices  # noqa: E402

MOST_THREADS = min(3, numba.config.NUMBA_NUM_THREADS)  # numba starts no more than this


def expected_product(packed: np.ndarray, x_q: np.ndarray) -> np.ndarray:
    """The definition: core.bitlinear.ternary_matmul on the unpacked weights, (T, out) int32."""
    return reference_matmul(x_q, unpack_ternary(packed))


# ---- exactness ----


@given(w=ternary_matrices(max_rows=48, max_cols=300, rows_multiple=4), data=st.data())
def test_equals_the_reference_for_any_shape_tokens_and_threads(w, data):
    # T from 1 to 40 crosses the four-token passes and their tail of T % 4 single tokens
    num_tokens = data.draw(st.integers(1, 40), label="T")
    threads = data.draw(st.integers(1, MOST_THREADS), label="threads")
    x_q = data.draw(int8_arrays((num_tokens, w.shape[1])), label="x_q")
    kernel = NumbaKernel(threads=threads)
    packed = pack_ternary(w)
    acc = kernel.matmul(kernel.prepare(packed), x_q)
    assert acc.dtype == np.int32 and acc.shape == (num_tokens, w.shape[0])
    assert np.array_equal(acc, expected_product(packed, x_q))


@pytest.mark.parametrize("num_tokens", [1, 3, 4, 5, 8, 11])
def test_extreme_sums_at_the_widest_rows(num_tokens):
    # every code 2 or 0 against -128 and 127: the largest |sum of code * x| the int32 lanes hold
    # for these widths, and the activation sum subtracted after
    for fill in (1, -1):
        w = np.full((8, 4099), fill, dtype=np.int8)
        x_q = np.full((num_tokens, 4099), -128, dtype=np.int8)
        x_q[1::2] = 127
        packed = pack_ternary(w)
        acc = NumbaKernel(threads=1).matmul(packed, x_q)
        assert np.array_equal(acc, expected_product(packed, x_q))


def test_the_worked_example_of_the_module_docstring():
    # out = 4, one column: weights [+1, -1, 0, +1] pack to the byte 0x92; x = 10
    packed = np.array([[0x92]], dtype=np.uint8)
    assert np.array_equal(unpack_ternary(packed)[:, 0], [1, -1, 0, 1])
    x_q = np.array([[10]], dtype=np.int8)
    assert ternary.ternary_matmul(x_q, packed).tolist() == [[10, -10, 0, 10]]


def test_prepare_keeps_the_checkpoints_bytes_without_a_copy():
    packed = pack_ternary(np.ones((8, 33), dtype=np.int8))
    packed.setflags(write=False)  # as a view of the read-only memory map is
    kernel = NumbaKernel(threads=1)
    assert kernel.prepare(packed) is packed
    x_q = np.arange(66, dtype=np.int8).reshape(2, 33)
    assert np.array_equal(kernel.matmul(packed, x_q), expected_product(packed, x_q))


def test_activations_need_not_be_contiguous():
    rng = np.random.default_rng(3)
    packed = pack_ternary(rng.integers(-1, 2, (12, 70)).astype(np.int8))
    x_q = rng.integers(-128, 128, (70, 5)).astype(np.int8).T  # (5, 70), Fortran order
    assert np.array_equal(NumbaKernel(threads=1).matmul(packed, x_q),
                          expected_product(packed, x_q))


def test_a_width_mismatch_is_an_error_not_a_read_past_the_end():
    packed = pack_ternary(np.ones((4, 10), dtype=np.int8))
    with pytest.raises(ValueError, match="differ in in_features"):
        ternary.ternary_matmul(np.zeros((1, 9), dtype=np.int8), packed)
    with pytest.raises(ArgumentError, match="expected \\(out/4, in\\) uint8"):
        NumbaKernel(threads=1).prepare(packed.view(np.int8))


# ---- threads ----


@settings(max_examples=10)
@given(threads=st.integers(1, MOST_THREADS), data=st.data())
def test_the_backend_runs_on_the_threads_asked_for(threads, data):
    kernel = get_backend("fast:numba", threads)
    assert kernel.threads == threads
    x_q = data.draw(int8_arrays((2, 9)))
    kernel.matmul(kernel.prepare(pack_ternary(np.ones((4, 9), np.int8))), x_q)
    assert numba.get_num_threads() == threads  # set for this thread by the call


def test_by_default_every_core_this_process_may_use():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert get_backend("fast:numba").threads == min(cores, numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_a_bad_thread_count_is_one_argument_error(threads):
    with pytest.raises(ArgumentError, match=r"^threads is .*, expected an integer >= 1"):
        get_backend("fast:numba", threads)


def test_more_threads_than_numba_started_is_one_argument_error():
    most = numba.config.NUMBA_NUM_THREADS
    with pytest.raises(ArgumentError, match=f"numba runs at most {most} .*NUMBA_NUM_THREADS"):
        get_backend("fast:numba", most + 1)


# ---- fresh processes: NUMBA_NUM_THREADS, NUMBA_DISABLE_JIT, the disk cache ----

PROBE = textwrap.dedent("""
    import sys
    import numpy as np
    from minibitnet.core.bitlinear import ternary_matmul
    from minibitnet.core.packing import pack_ternary, unpack_ternary
    from minibitnet.kernels.numba import ternary
    from minibitnet.kernels.registry import get_backend
    rng = np.random.default_rng(7)
    kernel = get_backend("fast:numba", int(sys.argv[1]))
    for rows, cols, tokens in [(4, 1, 1), (8, 13, 5), (12, 41, 9), (4, 7, 4)]:
        packed = pack_ternary(rng.integers(-1, 2, (rows, cols)).astype(np.int8))
        x_q = rng.integers(-128, 128, (tokens, cols)).astype(np.int8)
        expected = ternary_matmul(x_q, unpack_ternary(packed))
        assert np.array_equal(kernel.matmul(kernel.prepare(packed), x_q), expected)
    print(type(ternary.ternary_matmul).__name__, kernel.threads)
""")


def run_probe(threads: int, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_vars}
    return subprocess.run([sys.executable, "-c", PROBE, str(threads)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_three_threads_where_numba_starts_three():
    result = run_probe(3, NUMBA_NUM_THREADS="3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["CPUDispatcher", "3"]


# The property of test_equals_the_reference_for_any_shape_tokens_and_threads, on smaller shapes,
# for the kernel run as plain Python.
INTERPRETED_PROPERTY = textwrap.dedent("""
    import numba
    import numpy as np
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from minibitnet.core.bitlinear import ternary_matmul
    from minibitnet.core.packing import pack_ternary, unpack_ternary
    from minibitnet.kernels.numba import ternary
    from minibitnet.kernels.registry import get_backend
    from minibitnet_testing.strategies import int8_arrays, ternary_matrices

    @settings(max_examples=25, deadline=None, database=None)
    @given(w=ternary_matrices(max_rows=12, max_cols=40, rows_multiple=4), data=st.data())
    def check(w, data):
        num_tokens = data.draw(st.integers(1, 9))
        threads = data.draw(st.integers(1, min(2, numba.config.NUMBA_NUM_THREADS)))
        x_q = data.draw(int8_arrays((num_tokens, w.shape[1])))
        kernel = get_backend("fast:numba", threads)
        packed = pack_ternary(w)
        expected = ternary_matmul(x_q, unpack_ternary(packed))
        assert np.array_equal(kernel.matmul(kernel.prepare(packed), x_q), expected)

    check()
    print(type(ternary.ternary_matmul).__name__)
""")


def test_numba_disable_jit_runs_the_same_source_as_plain_python():
    support = Path(__file__).parents[1] / "support"  # minibitnet_testing's strategies
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(support)}
    result = subprocess.run([sys.executable, "-c", INTERPRETED_PROPERTY], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["function"]  # a Python function, not a numba dispatcher


@pytest.mark.parametrize("where", ["read-only folder", "below a file"])
def test_an_unwritable_cache_folder_still_runs(tmp_path, where):
    if where == "read-only folder":
        cache = tmp_path / "numba-cache"
        cache.mkdir()
        cache.chmod(0o555)
    else:  # unwritable even for root, who may write into a read-only folder
        (tmp_path / "a-file").write_text("")
        cache = tmp_path / "a-file" / "numba-cache"
    # only the user-provided folder may hold the cache, so that numba finds none to write
    result = run_probe(1, NUMBA_CACHE_DIR=str(cache),
                       NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["CPUDispatcher", "1"]
    if where == "below a file":
        [warning] = result.stderr.splitlines()
        assert warning.startswith("minibitnet: warning: numba cannot cache its compiled kernels")
        assert "NUMBA_CACHE_DIR" in warning


def test_info_says_fast_runs_the_numba_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    """With numba installed, `minibitnet info` names numba as what `fast` runs, and the model
    loaded with `fast` runs it."""
    import minibitnet
    from minibitnet.cli import main

    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [fast_line] = [line for line in lines if line.split()[:1] == ["fast"]]
    assert "numba" in fast_line
    assert isinstance(minibitnet.load(backend="fast", threads=1).kernel, NumbaKernel)
