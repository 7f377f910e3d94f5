"""timed_forward times Model.forward itself: the same logits bit for bit, in every backend and
family, with and without cache; every step of the forward passes the timer where it happens."""

import time

import numpy as np
import pytest

import minibitnet
from minibitnet.core.model import STEPS
from minibitnet.tools.step_timing import PART_OF_STEP, PARTS, StepClock, timed_forward
from minibitnet_testing.builders import build_checkpoint
from minibitnet_testing.family_builders import FAMILY_SHAPES, build_family_checkpoint


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("awkward"), "awkward", seed=2)


def expected_calls(config) -> dict[str, int]:
    """How often one forward call runs each step, from the config alone (any number of tokens):
    seven BitLinear layers and one attention per block; two block norms, two sub-norms where the
    family has them, one input norm per BitLinear with use_rms_norm, and the final norm."""
    layers = config.num_hidden_layers
    norms = 2 * layers + 1
    norms += 2 * layers if config.has_sub_norms else 0
    norms += 7 * layers if config.use_rms_norm else 0
    return {"embedding": 1, "rope tables": 1, "rms norm": norms, "quantize": 7 * layers,
            "ternary matmul": 7 * layers, "rescale": 7 * layers, "rope": layers,
            "kv cache": layers, "attention": layers, "activation": layers, "head": 1}


def test_every_step_counts_towards_one_part():
    assert set(PART_OF_STEP) == set(STEPS)
    assert set(PART_OF_STEP.values()) == set(PARTS)


@pytest.mark.parametrize("backend", ["reference", "fast", "fast:lut"])
def test_timed_forward_equals_forward(folder, backend):
    model = minibitnet.load(folder, backend=backend)
    plain, timed = model.new_cache(), model.new_cache()
    for ids in ([3, 1, 4, 1, 5, 9], [2], [6]):  # a prefill, then two decode steps
        expected = model.forward(ids, plain)
        start = time.perf_counter()
        logits, seconds = timed_forward(model, ids, timed)
        elapsed = time.perf_counter() - start
        assert np.array_equal(logits, expected)
        assert timed.length == plain.length
        assert list(seconds) == list(PARTS) and all(s >= 0 for s in seconds.values())
        assert seconds["ternary matmuls"] > 0 and seconds["head"] > 0
        # the parts are disjoint pieces of the one call, not a second run of anything
        assert sum(seconds.values()) <= elapsed


@pytest.mark.parametrize("shape", sorted(FAMILY_SHAPES))
def test_timed_forward_equals_forward_in_every_family(tmp_path, shape):
    """SiLU gate, no sub-norms, the RMSNorm inside BitLinear, llama3 RoPE, fp16 tables, masters."""
    model = minibitnet.load(build_family_checkpoint(tmp_path / shape, shape, seed=2),
                            backend="fast")
    plain, timed = model.new_cache(), model.new_cache()
    for ids in ([3, 1, 4, 1, 5, 9], [2]):
        logits, _ = timed_forward(model, ids, timed)
        assert np.array_equal(logits, model.forward(ids, plain))
    clock = StepClock()
    logits = model.forward([7], timed, timer=clock)
    assert np.array_equal(logits, model.forward([7], plain))
    assert dict(clock.calls) == expected_calls(model.config)


@pytest.mark.parametrize("tokens", [1, 5])
def test_each_step_is_timed_where_the_forward_runs_it(folder, tokens):
    """Hand-counted for the awkward shape (sub-norms, no BitLinear input norm); the counts do not
    depend on the number of tokens."""
    model = minibitnet.load(folder, backend="reference")
    layers = model.config.num_hidden_layers
    clock = StepClock()
    model.forward(list(range(3, 3 + tokens)), model.new_cache(), timer=clock)
    assert dict(clock.calls) == {
        "embedding": 1, "rope tables": 1, "rms norm": 4 * layers + 1, "quantize": 7 * layers,
        "ternary matmul": 7 * layers, "rescale": 7 * layers, "rope": layers, "kv cache": layers,
        "attention": layers, "activation": layers, "head": 1}
    assert set(clock.seconds) == set(clock.calls)
