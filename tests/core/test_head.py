"""The output head: both table storages compute the logits of the exact float32 widening."""

import numpy as np
import pytest

from minibitnet.core.head import CHUNK_ROWS, DEFAULT_STORAGE, STORAGES, OutputHead, widen_table
from minibitnet.core.bfloat16 import bf16_to_float32, float32_to_bf16


def random_table(vocab, hidden, seed=0):
    values = np.random.default_rng(seed).standard_normal((vocab, hidden), dtype=np.float32)
    return float32_to_bf16(values * np.float32(0.05))  # (V, D) bf16 bits


def test_widen_table_is_the_exact_bf16_widening():
    bits = random_table(CHUNK_ROWS * 2 + 3, 24)  # a partial last chunk
    assert np.array_equal(widen_table(bits), bf16_to_float32(bits))


@pytest.mark.parametrize("vocab", [1, CHUNK_ROWS, CHUNK_ROWS + 1, 3 * CHUNK_ROWS - 7])
@pytest.mark.parametrize("tokens", [1, 5])
def test_storages_agree(vocab, tokens):
    bits = random_table(vocab, 40, seed=vocab)
    hidden = np.random.default_rng(tokens).standard_normal((tokens, 40), dtype=np.float32)
    logits = {storage: OutputHead(bits, storage)(hidden) for storage in STORAGES}
    assert logits["float32"].shape == (tokens, vocab) and logits["float32"].dtype == np.float32
    # not bit for bit: BLAS may sum a one-row chunk in another order than the full product,
    # which is why every backend uses the same storage (DEFAULT_STORAGE)
    np.testing.assert_allclose(logits["float32"], logits["bf16"], rtol=1e-5, atol=1e-6)
    expected = hidden.astype(np.float64) @ bf16_to_float32(bits).T.astype(np.float64)
    np.testing.assert_allclose(logits["bf16"], expected, rtol=1e-5, atol=1e-5)


def test_head_on_a_memory_mapped_table(tmp_path):
    bits = random_table(CHUNK_ROWS + 9, 16)
    path = tmp_path / "table.bin"
    bits.tofile(path)
    mapped = np.memmap(path, dtype=np.uint16, mode="r", shape=bits.shape)
    hidden = np.ones((2, 16), np.float32)
    for storage in STORAGES:  # a mapped table gives exactly the logits of an in-memory one
        assert np.array_equal(OutputHead(mapped, storage)(hidden), OutputHead(bits, storage)(hidden))


def test_unknown_storage_is_refused():
    with pytest.raises(ValueError, match="float32, bf16"):
        OutputHead(random_table(4, 4), "int8")


@pytest.mark.parametrize("vocab", [1, CHUNK_ROWS + 1, 5 * CHUNK_ROWS - 3])
@pytest.mark.parametrize("tokens", [1, 4])
def test_the_bf16_logits_do_not_depend_on_the_thread_count(vocab, tokens):
    """The chunks start at multiples of CHUNK_ROWS however many threads share them, so every
    thread count gives the logits of one thread, bit for bit (more threads than chunks too)."""
    bits = random_table(vocab, 48, seed=vocab)
    hidden = np.random.default_rng(tokens).standard_normal((tokens, 48), dtype=np.float32)
    one = OutputHead(bits, "bf16", threads=1)(hidden)
    for threads in (2, 3, 8):
        head = OutputHead(bits, "bf16", threads=threads)
        assert head.threads == min(threads, -(-vocab // CHUNK_ROWS))
        assert np.array_equal(head(hidden), one)
        assert np.array_equal(head(hidden), one)  # the reused buffers hold nothing over


def test_the_default_storage_is_read_in_place():
    """bf16, the default, keeps the table as it is (memory-mapped in a model), widening nothing
    at load."""
    bits = random_table(CHUNK_ROWS + 3, 8)
    head = OutputHead(bits)
    assert head.storage == DEFAULT_STORAGE == "bf16"
    assert head.table is None and head.table_bf16 is bits


def test_a_thread_count_below_one_is_refused():
    with pytest.raises(ValueError, match="head threads is 0, expected at least 1"):
        OutputHead(random_table(4, 4), "bf16", threads=0)
