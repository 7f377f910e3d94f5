"""Whole models: every fast backend, on any number of threads, gives the reference's logits bit
for bit, and its text."""

from __future__ import annotations

import numpy as np
import pytest

import minibitnet
from minibitnet.kernels.numba_kernel import numba_missing
from minibitnet.kernels.registry import DENSE_MIN_TOKENS, available_backends
from minibitnet_testing.builders import build_checkpoint

FAST_BACKENDS = [info.name for info in available_backends() if info.name.startswith("fast")]
# 1 to 3 threads, as far as numba starts them (the kernels without threads ignore the count)
MOST_THREADS = 3
if numba_missing() is None:
    import numba

    MOST_THREADS = min(MOST_THREADS, numba.config.NUMBA_NUM_THREADS)
THREAD_COUNTS = list(range(1, MOST_THREADS + 1))
# long enough that "fast" takes its dense path for the whole prompt and the LUT path per step
PROMPT = [(37 * i + 5) % 250 for i in range(DENSE_MIN_TOKENS + 2)]


@pytest.fixture(scope="module", params=["tiny", "awkward", "mha"])
def folder(request, tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp(request.param), request.param, seed=11)


@pytest.fixture(scope="module")
def reference(folder):
    return minibitnet.load(folder, backend="reference")


def stepped_logits(model, ids):
    """Logits of a prompt fed as a 3-token prefill then one token at a time through the cache."""
    cache = model.new_cache()
    parts = [model.forward(ids[:3], cache)] + [model.forward([t], cache) for t in ids[3:]]
    return np.concatenate(parts)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_logits_bit_identical(folder, reference, backend):
    model = minibitnet.load(folder, backend=backend)
    assert model.backend == backend
    # one forward of many tokens (prefill) and the cached path (prefill + decode steps)
    assert np.array_equal(model.logits(PROMPT), reference.logits(PROMPT))
    assert np.array_equal(stepped_logits(model, PROMPT), stepped_logits(reference, PROMPT))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_greedy_generation_identical(folder, reference, backend):
    model = minibitnet.load(folder, backend=backend)
    expected = reference.generate(PROMPT, 12, temperature=0.0, stop_ids=[])
    assert model.generate(PROMPT, 12, temperature=0.0, stop_ids=[]) == expected


@pytest.mark.parametrize("threads", THREAD_COUNTS)
@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_logits_bit_identical_on_every_thread_count(folder, reference, backend, threads):
    model = minibitnet.load(folder, backend=backend, threads=threads)
    assert np.array_equal(model.logits(PROMPT), reference.logits(PROMPT))
    assert np.array_equal(stepped_logits(model, PROMPT), stepped_logits(reference, PROMPT))
