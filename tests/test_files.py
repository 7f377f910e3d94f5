"""Atomic writes: an interrupted write leaves the previous file whole and no temporary files."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minibitnet
from minibitnet.files import atomic_write, atomic_write_text
from minibitnet.formats.safetensors import TensorSpec, read_header, write_safetensors
from minibitnet_testing.builders import build_checkpoint


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def specs() -> list[TensorSpec]:
    return [TensorSpec(f"t{i}", "F32", (64, 64)) for i in range(4)]


def test_keyboard_interrupt_mid_write_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    folder = build_checkpoint(tmp_path / "model")
    target = folder / "model.safetensors"
    before = digest(target)
    written: list[str] = []

    def produce(spec: TensorSpec) -> np.ndarray:
        if len(written) == 2:  # Ctrl-C while the third tensor is being made
            raise KeyboardInterrupt
        written.append(spec.name)
        return np.zeros(spec.shape, np.float32)

    with pytest.raises(KeyboardInterrupt):
        write_safetensors(target, specs(), produce)
    assert written == ["t0", "t1"]  # the write really was halfway
    assert digest(target) == before
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    minibitnet.load(folder)  # still the complete, valid model


def test_an_error_mid_write_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "new.safetensors"

    def produce(spec: TensorSpec) -> np.ndarray:
        return np.zeros((1, 1), np.float32)  # the wrong shape: the writer refuses it

    with pytest.raises(ValueError, match="expected"):
        write_safetensors(target, specs(), produce)
    assert list(tmp_path.iterdir()) == []


def test_a_completed_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "x.safetensors"
    target.write_bytes(b"old")
    write_safetensors(target, specs(), lambda spec: np.ones(spec.shape, np.float32))
    tensors, _, _ = read_header(target)
    assert sorted(tensors) == ["t0", "t1", "t2", "t3"]
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


def test_text_write_interrupted_keeps_old_text(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_a_folder_in_the_way_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    target.mkdir()
    (target / "keep").write_text("mine")
    with pytest.raises(OSError):
        atomic_write_text(target, "data")
    assert (target / "keep").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="no POSIX permission bits")
def test_written_files_get_the_umask_permissions(tmp_path: Path) -> None:
    """Not the 0600 of the temporary file: a checkpoint is as readable as any file one makes."""
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_write_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    """A process killed outright (no handler runs) while rewriting the checkpoint: the old file
    is intact; only the temporary file, which the rename never reached, is left behind."""
    folder = build_checkpoint(tmp_path / "model")
    target = folder / "model.safetensors"
    before = digest(target)
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from minibitnet.formats.safetensors import TensorSpec, write_safetensors

        def produce(spec):
            if spec.name == "t2":
                print("halfway", flush=True)
                time.sleep(600)
            return np.zeros(spec.shape, np.float32)

        specs = [TensorSpec(f"t{{i}}", "F32", (64, 64)) for i in range(4)]
        write_safetensors({str(target)!r}, specs, produce)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "halfway"
        leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert len(leftovers) == 1  # the new bytes really were being written beside it
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert digest(target) == before
    minibitnet.load(folder)
