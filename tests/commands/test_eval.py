"""Scoring a text: the sliding window scores every token once, and `minibitnet eval` reports it.

The window arithmetic is checked against a hand-derived case (a model whose logits say which
position asked); the command against a direct computation on a tiny trained model, ternary and
its full-precision twin.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import minibitnet
from minibitnet import tokenizer
from minibitnet.cli import main
from minibitnet.commands.train import PRESETS
from minibitnet.tools.evaluate import sliding_window_nats
from minibitnet.train.export import read_float
from minibitnet.train.loop import FLOAT_WEIGHTS_FILE, Settings, train
from minibitnet.train.model import forward_logits
from minibitnet_testing import TEST_DATA

CORPUS = TEST_DATA / "sonnets_excerpt.txt"
HELD_OUT = "When I do count the clock that tells the time,\n"  # one 32-token window


def direct_nats(logits: np.ndarray, ids: list[int]) -> float:
    """-sum ln p(ids[j] | ids[:j]) for j >= 1 from one (L, V) logits array over all of ids."""
    rows = logits[:-1].astype(np.float64)
    log_probs = rows - rows.max(axis=-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=-1, keepdims=True))
    return float(-log_probs[np.arange(len(ids) - 1), ids[1:]].sum())


def test_every_token_is_scored_once_with_the_context_the_window_allows():
    # logits that put all mass on "how many tokens of context did I see": the scored token j
    # then costs 0 nats exactly when the window showed it j tokens (its whole past)
    seen: list[tuple[int, int]] = []

    def logits_of(window_ids):
        seen.append((window_ids[0], len(window_ids)))
        logits = np.full((len(window_ids), 16), -1e9)
        logits[np.arange(len(window_ids)), np.arange(len(window_ids)) + 1] = 0.0
        return logits

    ids = list(range(10))  # token j sits at position j
    nats, scored = sliding_window_nats(logits_of, ids, window=4, stride=2)
    assert scored == 9
    # windows start at 0, 2, 4, 6 (keeping 2 tokens of context) and end at the text's end
    assert seen == [(0, 4), (2, 4), (4, 4), (6, 4)]
    # in the first window every token sees its whole past (0 nats); later ones are predicted
    # from a shifted position, so they cost 1e9 each: 3 free tokens, 6 expensive
    assert nats == pytest.approx(6e9)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny ternary run and its full-precision twin, 30 steps each."""
    folders = {}
    for label, quantize in (("ternary", True), ("float", False)):
        out = tmp_path_factory.mktemp(label)
        settings = Settings(data=(str(CORPUS),), steps=30, batch_size=4, context=32, lr=1e-2,
                            warmup=3, weight_decay=0.1, seed=5, quantize=quantize,
                            bpe_vocab=300, checkpoint_every=30)
        train(out, settings, PRESETS["tiny"], log=io.StringIO())
        folders[label] = out
    return folders


def run_eval(capsys, *args: str) -> dict:
    assert main(["eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_of_the_ternary_model_is_the_direct_score(runs, tmp_path, capsys):
    model_dir = runs["ternary"] / "model"
    text = tmp_path / "held_out.txt"
    text.write_text(HELD_OUT, encoding="utf-8")
    report = run_eval(capsys, "--model", str(model_dir), "--text", str(text), "--window", "32")
    ids = tokenizer.load(model_dir).encode(HELD_OUT, bos=True)
    assert report["tokens"] == len(ids) - 1 and report["characters"] == len(HELD_OUT)
    # the text fits in one window, so the score is one forward pass over all of it
    assert len(ids) <= 32
    nats = direct_nats(minibitnet.load(model_dir).logits(ids), ids)
    assert report["bits_per_char"] == pytest.approx(nats / math.log(2) / len(HELD_OUT), rel=1e-5)
    assert report["perplexity"] == pytest.approx(math.exp(nats / (len(ids) - 1)), rel=1e-5)


def test_eval_scores_the_full_precision_twin_from_its_run_folder(runs, tmp_path, capsys):
    run_dir = runs["float"]
    assert (run_dir / FLOAT_WEIGHTS_FILE).is_file()
    text = tmp_path / "held_out.txt"
    text.write_text(HELD_OUT, encoding="utf-8")
    report = run_eval(capsys, "--model", str(run_dir), "--text", str(text))
    ids = tokenizer.load(run_dir).encode(HELD_OUT, bos=True)
    assert len(ids) <= 32
    config = minibitnet.config.load_config(run_dir)
    logits = forward_logits(read_float(run_dir / FLOAT_WEIGHTS_FILE), config,
                            np.array([ids]), quantize=False)[0]
    nats = direct_nats(logits, ids)
    assert report["bits_per_char"] == pytest.approx(nats / math.log(2) / len(HELD_OUT), rel=1e-5)


def test_a_longer_text_is_scored_in_overlapping_windows(runs, tmp_path, capsys):
    model_dir = runs["ternary"] / "model"
    text = tmp_path / "long.txt"
    text.write_text(HELD_OUT * 8, encoding="utf-8")
    wide = run_eval(capsys, "--model", str(model_dir), "--text", str(text), "--stride", "31")
    narrow = run_eval(capsys, "--model", str(model_dir), "--text", str(text), "--stride", "8")
    assert wide["tokens"] == narrow["tokens"] > 32  # every token once, whatever the stride
    # more context per scored token can only be scored differently, never skip tokens
    assert wide["bits_per_char"] != narrow["bits_per_char"]
    assert 0 < narrow["bits_per_char"] < 12


def test_eval_draws_its_progress_on_stderr_and_prints_the_score_alone(runs, tmp_path, capsys):
    model_dir = runs["ternary"] / "model"
    text = tmp_path / "long.txt"
    text.write_text(HELD_OUT * 4, encoding="utf-8")
    assert main(["eval", "--model", str(model_dir), "--text", str(text), "--stride", "8"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and "bits per character" in captured.out
    scored = len(tokenizer.load(model_dir).encode(HELD_OUT * 4, bos=True)) - 1
    # captured stderr is not a terminal: the bar prints plain lines, the last one a summary
    assert "\r" not in captured.err
    assert re.fullmatch(rf"scored \[#{{24}}\] {scored:,}/{scored:,} tokens  \S+ tokens/s  "
                        r"done in \d+ s", captured.err.splitlines()[-1]), captured.err


@pytest.mark.parametrize("flags, message", [
    (["--window", "1"], "--window is 1"),
    (["--window", "33"], "--window is 33"),
    (["--stride", "40"], "--stride is 40"),
])
def test_eval_range_checks_its_flags(runs, tmp_path, capsys, flags, message):
    text = tmp_path / "held_out.txt"
    text.write_text(HELD_OUT, encoding="utf-8")
    code = main(["eval", "--model", str(runs["ternary"] / "model"), "--text", str(text), *flags])
    assert code == 1 and message in capsys.readouterr().err


def test_eval_names_a_missing_or_empty_text(runs, tmp_path, capsys):
    model = str(runs["ternary"] / "model")
    assert main(["eval", "--model", model, "--text", str(tmp_path / "nope.txt")]) == 1
    assert "nope.txt: no such file" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    assert main(["eval", "--model", model, "--text", str(tmp_path / "empty.txt")]) == 1
    assert "the file is empty" in capsys.readouterr().err
