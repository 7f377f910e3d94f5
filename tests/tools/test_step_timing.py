"""timed_forward runs exactly Model.forward: same logits bit for bit, with and without cache."""

import numpy as np
import pytest

import minibitnet
from minibitnet_testing.builders import build_checkpoint
from minibitnet.tools.step_timing import PARTS, timed_forward


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("awkward"), "awkward", seed=2)


@pytest.mark.parametrize("backend", ["reference", "fast", "fast:lut"])
def test_timed_forward_equals_forward(folder, backend):
    model = minibitnet.load(folder, backend=backend)
    plain, timed = model.new_cache(), model.new_cache()
    for ids in ([3, 1, 4, 1, 5, 9], [2], [6]):  # a prefill, then two decode steps
        expected = model.forward(ids, plain)
        logits, seconds = timed_forward(model, ids, timed)
        assert np.array_equal(logits, expected)
        assert timed.length == plain.length
        assert set(seconds) == set(PARTS) and all(s >= 0 for s in seconds.values())
        assert seconds["ternary matmuls"] > 0 and seconds["head"] > 0


@pytest.mark.parametrize("shape", ["falcon-e", "llama3", "1bitllm"])
def test_timed_forward_equals_forward_in_every_family(tmp_path, shape):
    """SiLU gate, no sub-norms, the RMSNorm inside BitLinear, llama3 RoPE, fp16 tables."""
    from minibitnet_testing.family_builders import build_family_checkpoint

    model = minibitnet.load(build_family_checkpoint(tmp_path / shape, shape, seed=2),
                            backend="fast")
    plain, timed = model.new_cache(), model.new_cache()
    for ids in ([3, 1, 4, 1, 5, 9], [2]):
        logits, _ = timed_forward(model, ids, timed)
        assert np.array_equal(logits, model.forward(ids, plain))
