"""``minibitnet make-checkpoint`` run as a user runs it: a subprocess, output and exit codes."""

import subprocess
import sys

import numpy as np
import pytest

import minibitnet


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "minibitnet.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_make_checkpoint_tiny_writes_a_loadable_model(tmp_path):
    out = tmp_path / "tiny"
    result = run_cli("make-checkpoint", "--shape", "tiny", "--out", str(out), "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)  # stdout holds only the folder
    assert "done in" in result.stderr and "MB/s" in result.stderr  # the progress bar
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    logits = minibitnet.load(out).logits([1, 2, 3])
    assert np.isfinite(logits).all()


def test_make_checkpoint_refuses_to_replace_without_force(tmp_path):
    assert run_cli("make-checkpoint", "--shape", "tiny", "--out", str(tmp_path)).returncode == 0
    before = (tmp_path / "model.safetensors").read_bytes()
    again = run_cli("make-checkpoint", "--shape", "tiny", "--out", str(tmp_path), "--seed", "9")
    assert again.returncode == 1 and "--force" in again.stderr
    assert (tmp_path / "model.safetensors").read_bytes() == before
    forced = run_cli("make-checkpoint", "--shape", "tiny", "--out", str(tmp_path), "--seed", "9",
                     "--force")
    assert forced.returncode == 0 and (tmp_path / "model.safetensors").read_bytes() != before


def test_make_checkpoint_bad_shape_is_one_line(tmp_path):
    result = run_cli("make-checkpoint", "--shape", "huge", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "expected one of: tiny, 2b4t" in result.stderr


def test_make_checkpoint_list_shows_every_shape():
    result = run_cli("make-checkpoint", "--list")
    assert result.returncode == 0
    for name in ("tiny", "2b4t", "125M", "350M", "1.5B", "3.3B", "7B", "13B"):
        assert f"\n{name} " in result.stdout
    assert "2,412,820,480" in result.stdout  # the 2B4T parameter count


def test_only_shapes_with_llamas_vocabulary_get_a_tokenizer():
    from minibitnet.commands.make_checkpoint import _has_llama3_vocabulary
    from minibitnet.tools.shapes import SHAPES

    assert [name for name in SHAPES if _has_llama3_vocabulary(name)] == ["2b4t"]


@pytest.mark.slow
def test_the_2b4t_tokenizer_fits_the_2b4t_config(tmp_path):
    """The made-up 128k tokenizer has the 2B4T ids: BOS 128000, <|eot_id|> 128009, 128256 in
    all, and Hugging Face tokenizers reads it as minibitnet does."""
    from minibitnet.tools.shapes import get_shape
    from minibitnet.tokenizer.synthetic import LLAMA3_VOCAB, synthetic_vocab, write_tokenizer
    from minibitnet.tokenizer import load

    write_tokenizer(tmp_path, synthetic_vocab(LLAMA3_VOCAB))
    ours = load(tmp_path)
    config = get_shape("2b4t")
    assert ours.vocab_size == config.vocab_size == 128_256
    assert ours.bos_id == config.bos_token_id == 128_000
    assert ours.special_ids["<|eot_id|>"] == 128_009
    text = "Hello, world! It's 2026 <|eot_id|> and\n\tthe café is open."
    tokenizers = __import__("pytest").importorskip("tokenizers")
    oracle = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert ours.encode(text) == oracle.encode(text, add_special_tokens=False).ids
