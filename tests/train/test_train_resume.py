"""``minibitnet train --resume``: a finished run trains on to a larger --steps, and every run that
reaches its end says, on its last line, where the model was written."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from minibitnet.formats.checkpoint import WEIGHTS_FILE
from minibitnet.cli import main
from minibitnet.commands.train import PRESETS
from minibitnet.train.loop import (
    CHECKPOINT_FILE,
    FLOAT_WEIGHTS_FILE,
    Settings,
    load_checkpoint,
    train,
)
from minibitnet_testing import TEST_DATA

CORPUS = TEST_DATA / "sonnets_excerpt.txt"


def settings(steps: int = 6, quantize: bool = True) -> Settings:
    return Settings(data=(str(CORPUS),), steps=steps, batch_size=2, context=16, lr=1e-2,
                    warmup=2, weight_decay=0.1, seed=3, quantize=quantize, bpe_vocab=280,
                    checkpoint_every=3)


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    """A ternary run of 6 steps, complete and exported."""
    train(tmp_path, settings(), PRESETS["tiny"], log=io.StringIO())
    return tmp_path


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def test_resume_with_more_steps_trains_on(finished: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    *_, step, _, history, _ = load_checkpoint(finished / CHECKPOINT_FILE)
    exported = (finished / "model" / WEIGHTS_FILE).read_bytes()
    assert step == 6

    assert main(["train", "--out", str(finished), "--resume", "--steps", "9"]) == 0
    err = capsys.readouterr().err
    params, _, _, step, _, longer, meta = load_checkpoint(finished / CHECKPOINT_FILE)
    assert step == 9 and meta["settings"]["steps"] == 9
    assert [row[0] for row in longer] == list(range(1, 10))
    np.testing.assert_array_equal(np.array(longer[:6]), np.array(history))  # the first 6 kept
    assert f"resuming {finished} at step 6/9" in err
    assert last_line(err) == f"model written to {finished / 'model'}"
    assert (finished / "model" / WEIGHTS_FILE).read_bytes() != exported  # exported again


def test_resume_of_a_finished_run_without_steps_says_so(finished: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", str(finished), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"the run in {finished} is complete at step 6; pass --steps with more than 6" in err
    assert last_line(err) == f"model written to {finished / 'model'}"
    *_, step, _, _, _ = load_checkpoint(finished / CHECKPOINT_FILE)
    assert step == 6


@pytest.mark.parametrize("steps, message", [
    ("4", "--steps is 4, but the run in {out} is at step 6 already; expected at least 6"),
    ("0", "--steps is 0, expected at least 1"),
])
def test_resume_to_fewer_steps_is_one_line(finished: Path, capsys: pytest.CaptureFixture[str],
                                           steps: str, message: str) -> None:
    assert main(["train", "--out", str(finished), "--resume", "--steps", steps]) == 1
    assert capsys.readouterr().err == f"minibitnet: error: {message.format(out=finished)}\n"


def test_an_interrupted_run_resumed_to_its_end_reports_the_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(tmp_path, settings(), PRESETS["tiny"], log=io.StringIO(), max_steps=3)
    assert not (tmp_path / "model").exists()
    assert main(["train", "--out", str(tmp_path), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"resuming {tmp_path} at step 3/6" in err
    assert last_line(err) == f"model written to {tmp_path / 'model'}"
    # the bar of the resumed run starts at step 3: its first line is past the first half
    bar_lines = [line for line in err.splitlines() if line.startswith("training [")]
    assert bar_lines[0].startswith("training [################........] 4/6 steps")
    assert bar_lines[-1].startswith("training [########################] 6/6 steps")


def test_a_new_run_names_its_files_and_its_model(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(CORPUS), "--out", str(tmp_path), "--config", "tiny",
                 "--steps", "2", "--batch-size", "2", "--context", "16",
                 "--bpe-vocab", "260"]) == 0
    err = capsys.readouterr().err
    assert "byte-level BPE on 1 file ..." in err
    assert last_line(err) == f"model written to {tmp_path / 'model'}"


def test_a_float_run_names_its_weights_file(tmp_path: Path) -> None:
    log = io.StringIO()
    train(tmp_path, settings(steps=2, quantize=False), PRESETS["tiny"], log=log)
    assert last_line(log.getvalue()) == f"model written to {tmp_path / FLOAT_WEIGHTS_FILE}"


def test_steps_is_for_resuming_only(tmp_path: Path) -> None:
    from minibitnet.errors import ArgumentError

    with pytest.raises(ArgumentError, match="steps is for resuming"):
        train(tmp_path, settings(), PRESETS["tiny"], log=io.StringIO(), steps=9)
