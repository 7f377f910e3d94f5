"""A vocabulary padded past the tokenizer: ``chat`` and ``generate`` never sample a padding id.

config.json's vocab_size may exceed the tokenizer's (padding rows of the embedding, as several
published models have). The model below makes those rows win every argmax: rows 2k and 2k + 1
of the padding are +B and -B times the unit vector of hidden dimension k, so whatever the sign
of the final hidden state, some padding row scores B * max|h_k|, far above any real row.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

import minibitnet
from minibitnet.commands.running import stream_reply
from minibitnet.core.generate import stream_tokens
from minibitnet.errors import ArgumentError
from minibitnet.formats.safetensors import read_header
from minibitnet.tokenizer import load as load_tokenizer

TOKENIZER_SIZE = 500 + 256  # the builder's synthetic vocabulary, then the LLaMA-3 special tokens
HIDDEN = 64  # the tiny shape's hidden size
PADDING = 2 * HIDDEN  # a +B and a -B row for each hidden dimension
PADDING_SCORE = 100.0  # B: exact in bf16, and far above the random rows' scores


def make_padding_win(model_dir: Path) -> None:
    """Overwrite the padding rows of the tied embedding in model.safetensors, in place."""
    path = model_dir / "model.safetensors"
    tensors, _, data_start = read_header(path)
    embedding = tensors["model.embed_tokens.weight"]
    assert embedding.dtype == "BF16" and embedding.shape == (TOKENIZER_SIZE + PADDING, HIDDEN)
    rows = np.zeros((PADDING, HIDDEN), dtype=np.float32)  # (padding, D)
    for k in range(HIDDEN):
        rows[2 * k, k], rows[2 * k + 1, k] = PADDING_SCORE, -PADDING_SCORE
    bf16 = (rows.view(np.uint32) >> 16).astype("<u2")  # exact: the values fit bf16
    with open(path, "r+b") as handle:
        handle.seek(data_start + embedding.begin + TOKENIZER_SIZE * HIDDEN * 2)
        handle.write(bf16.tobytes())


@pytest.fixture(scope="module")
def padded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = build_model_with_tokenizer(tmp_path_factory.mktemp("padded"), seed=6,
                                        vocab_size=TOKENIZER_SIZE + PADDING,
                                        max_position_embeddings=128)
    make_padding_win(folder)
    return folder


def greedy(n: int) -> argparse.Namespace:
    return argparse.Namespace(n_predict=n, temp=0.0, top_k=None, top_p=None)


def test_padding_rows_would_win_without_the_mask(padded_dir: Path) -> None:
    """The fixture does what it claims: the public API, which samples any id, picks padding."""
    model, tokenizer = minibitnet.load(padded_dir), load_tokenizer(padded_dir)
    assert tokenizer.vocab_size == TOKENIZER_SIZE < model.config.vocab_size
    ids = model.generate(tokenizer.encode("Hello", bos=True), 4, temperature=0.0, stop_ids=[])
    assert all(token_id >= TOKENIZER_SIZE for token_id in ids)


def test_undecodable_ids_are_the_padding(padded_dir: Path) -> None:
    model, tokenizer = minibitnet.load(padded_dir), load_tokenizer(padded_dir)
    mask = tokenizer.undecodable_ids(model.config.vocab_size)
    assert mask.shape == (TOKENIZER_SIZE + PADDING,)
    assert np.array_equal(np.flatnonzero(mask), np.arange(TOKENIZER_SIZE, TOKENIZER_SIZE + PADDING))
    assert tokenizer.undecodable_ids(model.config.vocab_size) is mask  # computed once
    assert not mask.flags.writeable


def test_the_python_api_keeps_the_padding_out_when_told(padded_dir: Path) -> None:
    """Model.generate and Model.stream take the same mask as the commands."""
    model, tokenizer = minibitnet.load(padded_dir), load_tokenizer(padded_dir)
    prompt = tokenizer.encode("Hello", bos=True)
    mask = tokenizer.undecodable_ids(model.config.vocab_size)
    ids = model.generate(prompt, 8, temperature=0.0, stop_ids=[], suppressed=mask)
    assert len(ids) == 8 and max(ids) < TOKENIZER_SIZE
    assert list(model.stream(prompt, 8, temperature=0.0, stop_ids=[], suppressed=mask)) == ids
    tokenizer.decode(ids)  # every id decodes


@pytest.mark.parametrize("args", [greedy(12), argparse.Namespace(n_predict=12, temp=1.0,
                                                                    top_k=None, top_p=None)],
                         ids=["greedy", "sampled"])
def test_replies_never_hold_a_padding_id(padded_dir: Path, args: argparse.Namespace) -> None:
    model, tokenizer = minibitnet.load(padded_dir), load_tokenizer(padded_dir)
    prompt = tokenizer.encode("Hello", bos=True)
    reply = stream_reply(model, tokenizer, prompt, args, 0, set(), model.new_cache(),
                         io.StringIO())
    assert len(reply.ids) == 12
    assert max(reply.ids) < TOKENIZER_SIZE
    tokenizer.decode(reply.ids)  # every id decodes: the chat can keep the reply


def test_a_mask_that_leaves_nothing_is_refused(padded_dir: Path) -> None:
    model = minibitnet.load(padded_dir)
    everything = np.ones(model.config.vocab_size, dtype=bool)
    with pytest.raises(ArgumentError, match="at least one id left to sample"):
        next(stream_tokens(model, [1], 2, temperature=0.0, suppressed=everything))


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "minibitnet.cli", *args], input=stdin,
                          capture_output=True, text=True, cwd=Path("/"), env=env, timeout=120)


def test_chat_and_generate_print_the_same_greedy_reply(padded_dir: Path) -> None:
    """chat's prompt is the template's text with BOS first, which generate makes of the same
    text: greedy, both print the same reply, and the chat goes on to its next turn."""
    tokenizer = load_tokenizer(padded_dir)
    text = tokenizer.chat_text([{"role": "user", "content": "Hello"}])
    assert tokenizer.encode(text, bos=True) == tokenizer.chat_prompt(
        [{"role": "user", "content": "Hello"}])
    flags = ["-m", str(padded_dir), "-n", "10", "--temp", "0", "--quiet"]
    generated = run_cli("generate", *flags, "-p", text)
    chatted = run_cli("chat", *flags, stdin="Hello\nAgain\n")
    assert generated.returncode == 0, generated.stderr
    assert chatted.returncode == 0, chatted.stderr
    reply = generated.stdout[:-1]  # generate ends with a newline
    assert reply.strip(), "the masked model still says something"
    turns = chatted.stdout.split("> ")
    assert turns[1] == reply + "\n"
    assert len(turns) == 4  # two replies, then the prompt that met the end of input
    assert chatted.stderr == ""
