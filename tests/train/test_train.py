"""Training end to end on a tiny corpus: loss goes down, resuming is exact, export round-trips.

The corpus is an excerpt of Shakespeare's sonnets (public domain) in tests/data/; the model is
the ``tiny`` preset with a 300-token BPE, so each run takes about a second.
"""

from pathlib import Path

import numpy as np
import pytest

import minibitnet
from minibitnet.commands.train import PRESETS
from minibitnet.train.loop import CHECKPOINT_FILE, Settings, load_checkpoint, train
from minibitnet.train.model import forward_logits
from minibitnet_testing import TEST_DATA

CORPUS = TEST_DATA / "sonnets_excerpt.txt"


def settings(steps=40, quantize=True, **overrides):
    fields = dict(data=(str(CORPUS),), steps=steps, batch_size=4, context=32, lr=1e-2, warmup=4,
                  weight_decay=0.1, seed=3, quantize=quantize, bpe_vocab=300,
                  checkpoint_every=10)
    fields.update(overrides)
    return Settings(**fields)


def quiet():
    import io
    return io.StringIO()


@pytest.fixture(scope="module")
def ternary_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    params = train(out, settings(), PRESETS["tiny"], log=quiet())
    return out, params


@pytest.mark.parametrize("quantize", [True, False], ids=["ternary", "float"])
def test_loss_decreases(tmp_path, quantize):
    train(tmp_path, settings(quantize=quantize), PRESETS["tiny"], log=quiet())
    *_, history, _ = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    losses = np.array([row[2] for row in history])
    assert len(losses) == 40
    first, last = losses[:5].mean(), losses[-5:].mean()
    print(f"loss {first:.3f} -> {last:.3f}")
    assert last < first - 1.0  # from ~ln(320) = 5.8 to well below


def test_resume_gives_identical_weights(tmp_path, ternary_run):
    _, uninterrupted = ternary_run
    train(tmp_path, settings(), PRESETS["tiny"], log=quiet(), max_steps=20)
    *_, step, _, _, _ = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert step == 20
    resumed = train(tmp_path, resume=True, log=quiet())
    assert resumed.keys() == uninterrupted.keys()
    for name in resumed:
        np.testing.assert_array_equal(resumed[name], uninterrupted[name], err_msg=name)


def test_the_log_is_plain_lines_from_the_progress_bars(tmp_path):
    """A log that is not a terminal gets lines, not carriage returns: the BPE and step bars a
    line each tenth and a summary each, the validation losses as lines of their own."""
    log = quiet()
    train(tmp_path, settings(steps=10, val=str(CORPUS), val_every=5), PRESETS["tiny"], log=log)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert any(line.startswith("BPE [########################] 44/44 merges")
               and "done in" in line for line in lines)
    *_, history, _ = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert [line for line in lines if "validation loss" in line] == [
        f"step {step}: validation loss {history[step - 1][5]:.4f}" for step in (5, 10)]
    assert [line for line in lines if line.startswith("training [")][-1].startswith(
        "training [########################] 10/10 steps")
    assert "done in" in lines[-2] and lines[-1] == f"model written to {tmp_path / 'model'}"


def test_new_run_refuses_a_used_folder(ternary_run):
    out, _ = ternary_run
    with pytest.raises(minibitnet.errors.ArgumentError, match="--resume"):
        train(out, settings(), PRESETS["tiny"], log=quiet())


def test_export_loads_and_matches_the_training_forward(ternary_run):
    """The exported folder loads in minibitnet; its logits match the training forward pass up
    to the BF16 rounding of norms, embedding and weight scales (see train/export.py)."""
    out, params = ternary_run
    model = minibitnet.load(out / "model")
    config = model.config
    assert config.max_position_embeddings == 32
    ids = np.random.default_rng(0).integers(0, 300, 24)
    got = model.logits(ids.tolist())
    expected = forward_logits(params, config, ids[None], quantize=True)[0]
    gap = np.abs(got - expected).max()
    print(f"exported vs training forward: max |logit difference| {gap:.3g}")
    assert gap < 0.05 * np.abs(expected).max()
    assert (got.argmax(-1) == expected.argmax(-1)).mean() > 0.9


@pytest.mark.oracle
def test_export_matches_transformers(ternary_run):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    torch._dynamo.config.disable = True
    out, _ = ternary_run
    theirs = transformers.BitNetForCausalLM.from_pretrained(out / "model", dtype=torch.float32)
    theirs.eval()
    ours = minibitnet.load(out / "model")
    ids = np.random.default_rng(1).integers(0, 300, 32)
    with torch.no_grad():
        expected = theirs(torch.tensor(ids)[None]).logits[0].numpy()
    worst = float(np.abs(ours.logits(ids.tolist()) - expected).max())
    print(f"exported model vs transformers: max |logit difference| {worst:.3g}")
    assert worst < 1e-3


def test_exported_tokenizer_round_trips(ternary_run):
    from minibitnet.tokenizer import load as load_tokenizer

    out, _ = ternary_run
    tokenizer = load_tokenizer(out / "model")
    text = CORPUS.read_text(encoding="utf-8")[:500]
    assert tokenizer.decode(tokenizer.encode(text)) == text
