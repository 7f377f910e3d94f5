"""Model-level properties of the reference: cache agreement, greedy decoding, RoPE, errors."""

import numpy as np
import pytest

import minibitnet
from minibitnet.core.attention import grouped_query_attention
from minibitnet.errors import ArgumentError, ContextLengthError
from minibitnet.core.rope import apply_rope, rope_tables
from minibitnet.core.bitlinear import ReferenceKernel
from minibitnet.core.model import Model
from minibitnet.formats.detect import read_model
from minibitnet.tools.shapes import SHAPES
from minibitnet.tools.synthetic import write_checkpoint
from minibitnet_testing.builders import build_checkpoint


@pytest.fixture(scope="module", params=["tiny", "awkward", "mha"])
def model(request, tmp_path_factory):
    folder = build_checkpoint(tmp_path_factory.mktemp(request.param), request.param, seed=7)
    return minibitnet.load(folder, backend="reference")


def test_logits_shape_and_dtype(model):
    logits = model.logits([1, 2, 3])
    assert logits.shape == (3, model.config.vocab_size) and logits.dtype == np.float32
    assert model.backend == "reference"


def test_cache_step_by_step_equals_full_forward(model):
    ids = [5, 17, 3, 99, 42, 8, 61]
    full = model.logits(ids)
    cache = model.new_cache()
    stepped = np.concatenate([model.forward([token], cache) for token in ids])
    assert cache.length == len(ids)
    # float summation order differs between one (T, S) matmul and T single rows
    np.testing.assert_allclose(stepped, full, atol=1e-4, rtol=1e-4)


def test_greedy_with_cache_equals_argmax_of_recomputation(model):
    prompt = [3, 14, 15]
    generated = model.generate(prompt, 8, temperature=0.0, stop_ids=[])
    sequence = list(prompt)
    for token in generated:
        assert token == int(np.argmax(model.logits(sequence)[-1]))
        sequence.append(token)


def test_seeded_sampling_repeats(model):
    first = model.generate([1, 2], 10, temperature=0.9, top_k=20, top_p=0.9, seed=3, stop_ids=[])
    again = model.generate([1, 2], 10, temperature=0.9, top_k=20, top_p=0.9, seed=3, stop_ids=[])
    assert first == again and len(first) == 10


def test_stop_id_ends_generation(model):
    greedy = model.generate([4, 4], 5, temperature=0.0, stop_ids=[])
    stopped = model.generate([4, 4], 5, temperature=0.0, stop_ids=[greedy[1]])
    assert stopped == greedy[:greedy.index(greedy[1]) + 1]


def test_bad_ids_and_lengths(model):
    with pytest.raises(ArgumentError, match="outside the vocabulary"):
        model.logits([model.config.vocab_size])
    with pytest.raises(ArgumentError, match="outside the vocabulary"):
        model.logits([-1])
    with pytest.raises(ContextLengthError, match="max_position_embeddings"):
        model.logits([1] * (model.config.max_position_embeddings + 1))
    with pytest.raises(ArgumentError, match="top_p"):
        model.generate([1], 2, top_p=0.0)


def test_generation_stops_at_context_length(model):
    limit = model.config.max_position_embeddings
    out = model.generate([1] * (limit - 3), 10, temperature=0.0, stop_ids=[])
    assert len(out) == 4  # positions limit-3 .. limit-1 are filled, and one token is sampled


def test_rope_dot_product_depends_only_on_distance():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 1, 16)).astype(np.float32)
    k = rng.standard_normal((1, 1, 16)).astype(np.float32)

    def score(pos_q, pos_k):
        cq, sq = rope_tables(np.array([pos_q]), 16, 10000.0)
        ck, sk = rope_tables(np.array([pos_k]), 16, 10000.0)
        return float((apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum())

    assert np.isclose(score(7, 3), score(104, 100), atol=1e-4)
    assert np.isclose(score(0, 0), float((q * k).sum()), atol=1e-5)


def test_grouped_query_attention_equals_repeated_heads():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((6, 4, 8)).astype(np.float32)  # H=6, T=4
    k = rng.standard_normal((2, 4, 8)).astype(np.float32)  # K=2
    v = rng.standard_normal((2, 4, 8)).astype(np.float32)
    out = grouped_query_attention(q, k, v, start=0)
    # plain multi-head attention with each kv head repeated H/K times (transformers' repeat_kv)
    k_rep, v_rep = np.repeat(k, 3, axis=0), np.repeat(v, 3, axis=0)
    scores = q @ k_rep.transpose(0, 2, 1) / np.sqrt(8)
    scores = np.where(np.tril(np.ones((4, 4), bool)), scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    expected = (probs @ v_rep).transpose(1, 0, 2).reshape(4, 48)
    np.testing.assert_allclose(out, expected, atol=1e-5)


class _PackedReadingKernel(ReferenceKernel):
    """The reference product, declared as reading the packed bytes on every call."""

    reads_packed = True


def test_after_read_gets_each_packed_weight_once_unless_the_kernel_keeps_reading_it(tmp_path):
    config, weights, _ = read_model(write_checkpoint(tmp_path, SHAPES["tiny"], seed=1))
    packed = [w.packed for layer in weights.layers for w in layer.projections()]

    def handed_over(kernel):
        seen = []
        Model(config, weights, kernel, after_read=seen.append)
        return [a for a in seen if any(a is p for p in packed)]

    once = handed_over(ReferenceKernel())
    assert len(once) == len(packed) and all(any(a is p for a in once) for p in packed)
    assert handed_over(_PackedReadingKernel()) == []  # its pages must stay resident
