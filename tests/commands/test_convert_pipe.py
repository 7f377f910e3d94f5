"""``minibitnet convert`` cut short (a closed pipe, Ctrl-C) leaves no partial output folder.

Whatever the point of failure, the command removes what it created and nothing else: a new
destination folder disappears, an existing one keeps exactly the files it held. The failures are
injected where a real run meets them: the writes of the progress lines to stderr (``2>&1 | head``
closing the pipe, or a Ctrl-C arriving while a line is written) and the final path on stdout.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minibitnet
from minibitnet.formats.checkpoint import WEIGHTS_FILE
from minibitnet.cli import main
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

TARGETS = ["safetensors", "bf16", "gguf-i2s"]


class FailingStream(io.StringIO):
    """A text stream whose write number ``fail_at`` (from 0) raises ``error``; with
    ``keep_failing`` every later write does too, as a closed pipe does."""

    def __init__(self, fail_at: int, error: type[BaseException], keep_failing: bool) -> None:
        super().__init__()
        self.fail_at, self.error, self.keep_failing = fail_at, error, keep_failing
        self.writes = 0

    def write(self, text: str) -> int:
        number, self.writes = self.writes, self.writes + 1
        if number == self.fail_at or (self.keep_failing and number > self.fail_at):
            raise self.error()
        return super().write(text)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A packed model with a tokenizer whose projection inputs suit GGUF I2_S (multiples of 128)."""
    return build_model_with_tokenizer(tmp_path_factory.mktemp("src") / "packed", seed=9,
                                      hidden_size=128, head_dim=32, intermediate_size=256)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included), by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def stderr_writes(source: Path, probe: Path, target: str,
                  monkeypatch: pytest.MonkeyPatch) -> int:
    """How many times a successful convert (into the folder ``probe``) writes to stderr."""
    counter = FailingStream(fail_at=-1, error=BrokenPipeError, keep_failing=False)
    monkeypatch.setattr(sys, "stderr", counter)
    assert main(["convert", str(source), str(probe), "--to", target]) == 0
    monkeypatch.undo()
    return counter.writes


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("error, code", [(BrokenPipeError, 1), (KeyboardInterrupt, 130)],
                         ids=["closed-pipe", "ctrl-c"])
def test_a_failure_at_any_progress_line_leaves_no_new_folder(
        source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str,
        error: type[BaseException], code: int) -> None:
    dst = tmp_path / "new" / "model"  # two folders the command has to create
    writes = stderr_writes(source, tmp_path / "probe", target, monkeypatch)
    assert writes >= 3  # the "converting" line, progress lines, the last bar line
    for fail_at in range(writes):
        stream = FailingStream(fail_at, error, keep_failing=error is BrokenPipeError)
        monkeypatch.setattr(sys, "stderr", stream)
        assert main(["convert", str(source), str(dst), "--to", target]) == code
        monkeypatch.undo()
        assert not (tmp_path / "new").exists(), f"failed at stderr write {fail_at}"


@pytest.mark.parametrize("target", TARGETS)
def test_a_failure_keeps_an_existing_folder_as_it_was(
        source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    dst = tmp_path / "out"
    assert main(["convert", str(source), str(dst), "--to", "bf16"]) == 0  # a model to replace
    (dst / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(dst)
    writes = stderr_writes(source, tmp_path / "probe", target, monkeypatch)
    for fail_at in range(writes):
        monkeypatch.setattr(sys, "stderr", FailingStream(fail_at, BrokenPipeError, True))
        assert main(["convert", str(source), str(dst), "--to", target, "--force"]) == 1
        monkeypatch.undo()
        assert snapshot(dst) == before, f"failed at stderr write {fail_at}"


def test_a_closed_stdout_after_the_model_is_written_keeps_the_whole_model(
        source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path on stdout comes last, once every file is in place: losing it loses nothing."""
    dst = tmp_path / "out"
    monkeypatch.setattr(sys, "stdout", FailingStream(0, BrokenPipeError, keep_failing=True))
    assert main(["convert", str(source), str(dst), "--to", "safetensors"]) == 1
    monkeypatch.undo()
    assert sorted(p.name for p in dst.iterdir()) == sorted(p.name for p in source.iterdir())
    assert (dst / WEIGHTS_FILE).read_bytes() == (source / WEIGHTS_FILE).read_bytes()
    ids = [1, 5, 17, 3]
    assert np.array_equal(minibitnet.load(dst).logits(ids), minibitnet.load(source).logits(ids))


def run_with_closed(stream: str, source: Path, dst: Path) -> subprocess.CompletedProcess[str]:
    """The command in a subprocess whose stdout or stderr is a pipe nobody reads any more."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write, as after `| head -1`
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: write_end}
    try:
        return subprocess.run([sys.executable, "-m", "minibitnet.cli", "convert", str(source),
                               str(dst), "--to", "safetensors"], text=True, timeout=120,
                              cwd="/", **streams)
    finally:
        os.close(write_end)


def test_a_closed_stderr_pipe_leaves_no_folder_and_no_traceback(source: Path,
                                                                 tmp_path: Path) -> None:
    result = run_with_closed("stderr", source, tmp_path / "out")
    assert result.returncode == 1
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_a_closed_stdout_pipe_ends_quietly_with_the_model_complete(source: Path,
                                                                   tmp_path: Path) -> None:
    result = run_with_closed("stdout", source, tmp_path / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
    assert (tmp_path / "out" / WEIGHTS_FILE).read_bytes() == (source / WEIGHTS_FILE).read_bytes()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
