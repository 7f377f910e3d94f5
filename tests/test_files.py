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
from minibitnet.files import naming_os_errors
from minibitnet.folders import folder_lock, remove_stale_temporaries, replace_folder
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


# ---- whole folders: the lock, stale temporaries, the replacement ----

def make_folder(path: Path, **files: str) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def snapshot_text(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_held_folder_lock_refuses_a_second_holder_and_goes_with_its_file(
        tmp_path: Path) -> None:
    target = tmp_path / "out"
    with folder_lock(target) as locked:
        assert locked
        with pytest.raises(BlockingIOError), folder_lock(target):
            pass
        assert (tmp_path / ".out.minibitnet-lock").exists()
    assert list(tmp_path.iterdir()) == []  # the lock file is removed with the lock
    with folder_lock(target), folder_lock(tmp_path / "other"):  # another folder: its own lock
        pass


def test_only_our_temporaries_of_that_folder_are_removed(tmp_path: Path) -> None:
    ours = [make_folder(tmp_path / ".out.minibitnet-partial-12", x="1"),
            make_folder(tmp_path / ".out.minibitnet-old-7", x="2")]
    make_folder(tmp_path / "out")
    kept = [make_folder(tmp_path / ".out.minibitnet-partial-x"),  # not a pid
            make_folder(tmp_path / ".outer.minibitnet-partial-12"),  # another folder's
            make_folder(tmp_path / "out.minibitnet-partial-12"),  # not hidden: the user's
            make_folder(tmp_path / ".out.minibitnet-partial-12.bak")]
    (tmp_path / ".out.minibitnet-partial-13").write_text("a file, not our folder")
    assert remove_stale_temporaries(tmp_path / "out") == [
        f"removed {path}, left by an interrupted write" for path in ours]
    assert not any(path.exists() for path in ours)
    assert all(path.exists() for path in kept)
    assert (tmp_path / ".out.minibitnet-partial-13").is_file()


def test_a_folder_set_aside_with_the_target_missing_is_restored(tmp_path: Path) -> None:
    make_folder(tmp_path / ".out.minibitnet-old-7", model="old")
    make_folder(tmp_path / ".out.minibitnet-partial-7", model="new, maybe half")
    done = remove_stale_temporaries(tmp_path / "out")
    assert done[0].startswith(f"restored {tmp_path / 'out'}")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out" / "model").read_text(encoding="utf-8") == "old"


def test_replace_folder_keeps_what_it_is_told_and_leaves_no_aside(tmp_path: Path) -> None:
    target = make_folder(tmp_path / "out", model="old", notes="mine", shared="old")
    partial = make_folder(tmp_path / ".out.minibitnet-partial-1", model="new", shared="new")
    replace_folder(partial, target, keep=lambda name: name != "model")
    assert snapshot_text(target) == {"model": "new", "notes": "mine", "shared": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failed_rename_into_place_puts_the_old_folder_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = make_folder(tmp_path / "out", model="old")
    partial = make_folder(tmp_path / ".out.minibitnet-partial-1", model="new")
    real_rename = os.rename

    def rename(source: Path, destination: Path) -> None:
        if Path(source) == partial:
            raise OSError(28, "No space left on device")
        real_rename(source, destination)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError):
        replace_folder(partial, target, keep=lambda name: True)
    monkeypatch.undo()
    assert snapshot_text(target) == {"model": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [partial.name, "out"]


def test_an_os_error_without_a_file_is_named_after_the_file_written(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    with pytest.raises(OSError) as raised, naming_os_errors(target):
        raise OSError(28, "No space left on device")
    assert raised.value.filename == str(target)
    with pytest.raises(OSError) as raised, naming_os_errors(target):  # the temporary beside it
        raise OSError(28, "No space left on device", str(tmp_path / ".model.safetensors.x.tmp"))
    assert raised.value.filename == str(target)
    elsewhere = str(tmp_path / "source" / "tokenizer.json")
    with pytest.raises(OSError) as raised, naming_os_errors(target):  # a read of another file
        raise OSError(13, "Permission denied", elsewhere)
    assert raised.value.filename == elsewhere
    with pytest.raises(BrokenPipeError) as raised, naming_os_errors(target):  # stderr, not it
        raise BrokenPipeError(32, "Broken pipe")
    assert raised.value.filename is None
