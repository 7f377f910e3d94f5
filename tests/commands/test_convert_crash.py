"""``minibitnet convert`` killed, run twice at once, or out of disk: DST is never half written.

The folder is written under a temporary name beside DST and renamed into place when complete,
under an flock on ``.DST.minibitnet-lock``. A SIGKILL is delivered while model.safetensors is
being written (the writer is made to hang there by the test's own script); a concurrent convert
is made deterministic by holding the lock from the test; a full disk is a file object whose
writes fail with ENOSPC once a given number of bytes went through.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minibitnet
from minibitnet.cli import main
from minibitnet.formats.checkpoint import WEIGHTS_FILE
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

fcntl = pytest.importorskip("fcntl")  # the lock is POSIX; without it convert is not locked

PROMPT = [1, 5, 17, 3]
# a subprocess start is ~2 s on a loaded 2-core machine; this only detects a hang
HANG_S = 120

# convert, with the writer of model.safetensors made to hang once a tensor or more is written
HANGING_CONVERT = textwrap.dedent("""
    import sys, time
    import minibitnet.formats.writers as writers
    from minibitnet.cli import main

    real_write = writers.write_safetensors

    def write_then_hang(path, specs, produce, on_bytes=None):
        def produce_then_hang(spec):
            if spec.name.endswith("down_proj.weight"):
                print("halfway", flush=True)
                time.sleep(600)
            return produce(spec)
        return real_write(path, specs, produce_then_hang, on_bytes=on_bytes)

    writers.write_safetensors = write_then_hang
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A packed model with a tokenizer whose projection inputs suit GGUF I2_S."""
    return build_model_with_tokenizer(tmp_path_factory.mktemp("src") / "packed", seed=9,
                                      hidden_size=128, head_dim=32, intermediate_size=256)


@pytest.fixture(scope="module")
def old_model(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source as bf16 masters: a complete model for DST to hold before a --force."""
    folder = tmp_path_factory.mktemp("old") / "masters"
    assert convert(source, folder, "bf16") == 0
    return folder


def convert(src: Path, dst: Path, target: str, *flags: str) -> int:
    return main(["convert", str(src), str(dst), "--to", target, *flags])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included), by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def copy_folder(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for path in source.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def assert_same_model(folder: Path, source: Path) -> None:
    assert (folder / WEIGHTS_FILE).read_bytes() == (source / WEIGHTS_FILE).read_bytes()
    assert np.array_equal(minibitnet.load(folder).logits(PROMPT),
                          minibitnet.load(source).logits(PROMPT))


# ---- (a) SIGKILL mid-write ----

@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("replacing", [False, True], ids=["new-dst", "force-over-a-model"])
def test_a_kill_mid_write_leaves_dst_as_it_was_and_the_next_run_cleans_up(
        source: Path, old_model: Path, tmp_path: Path, replacing: bool,
        capsys: pytest.CaptureFixture[str]) -> None:
    dst = tmp_path / "out"
    before = snapshot(copy_folder(old_model, dst)) if replacing else None
    process = subprocess.Popen(
        [sys.executable, "-c", HANGING_CONVERT, "convert", str(source), str(dst), "--to",
         "safetensors", "--force"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "halfway"
        partial = tmp_path / f".out.minibitnet-partial-{process.pid}"
        in_progress = [p.name for p in partial.iterdir()]
        assert len(in_progress) == 1 and in_progress[0].startswith(f".{WEIGHTS_FILE}.")
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=HANG_S)
    assert hidden(tmp_path) == [".out.minibitnet-lock", partial.name]  # what the kill left
    if replacing:
        assert snapshot(dst) == before  # the old model, whole
    else:
        assert not dst.exists()

    assert convert(source, dst, "safetensors", "--force") == 0
    assert f"removed {partial}, left by an interrupted write" in capsys.readouterr().err
    assert hidden(tmp_path) == []
    assert_same_model(dst, source)


def test_a_kill_between_the_two_renames_of_a_replacement_restores_the_old_folder(
        source: Path, old_model: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """DST renamed aside, the new folder not yet renamed in: the next run puts the old back
    before it looks at DST, so without --force it refuses to replace it."""
    copy_folder(old_model, tmp_path / ".out.minibitnet-old-4321")
    copy_folder(source, tmp_path / ".out.minibitnet-partial-4321")
    assert convert(source, tmp_path / "out", "safetensors") == 1
    err = capsys.readouterr().err
    assert "restored" in err and "already holds model.safetensors; pass --force" in err
    assert hidden(tmp_path) == []
    assert snapshot(tmp_path / "out") == snapshot(old_model)


# ---- (b) two converts to one DST ----

def test_a_convert_while_another_holds_the_lock_stops_with_one_line(
        source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dst = tmp_path / "out"
    other_partial = tmp_path / ".out.minibitnet-partial-999999"  # the other convert's
    other_partial.mkdir()
    lock = os.open(tmp_path / ".out.minibitnet-lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert convert(source, dst, "safetensors") == 1
        assert capsys.readouterr().err == (
            f"minibitnet: error: DST {dst}: another minibitnet convert is writing it\n")
        assert not dst.exists()
        assert other_partial.exists()  # a live writer's temporary is not ours to remove
    finally:
        os.close(lock)
    assert convert(source, dst, "safetensors") == 0  # the lock released: cleans up, writes
    assert hidden(tmp_path) == []
    assert_same_model(dst, source)


def test_two_converts_started_together_give_one_model(source: Path, tmp_path: Path) -> None:
    """Whichever order they meet in, one writes DST and the other refuses: by the lock while
    the first runs, or by the model it finds once the first is done."""
    dst = tmp_path / "out"
    command = [sys.executable, "-m", "minibitnet.cli", "convert", str(source), str(dst),
               "--to", "safetensors"]
    processes = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for process in processes:
        _, err = process.communicate(timeout=HANG_S)
        results.append((process.returncode, err))
    assert sorted(code for code, _ in results) == [0, 1], results
    refused = next(err for code, err in results if code == 1)
    assert refused.count("minibitnet: error:") == 1
    assert ("another minibitnet convert is writing it" in refused
            or "already holds model.safetensors" in refused), refused
    assert hidden(tmp_path) == []
    assert_same_model(dst, source)


# ---- (c) a full disk ----

class FullDisk:
    """A disk with ``room`` bytes left: writes to files opened for writing through
    ``os.fdopen`` (as atomic_write opens them) fail with ENOSPC once it is used up."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.real_fdopen = os.fdopen

    def fdopen(self, fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = self.real_fdopen(fd, mode, *args, **kwargs)
        return FillingFile(handle, self) if "w" in mode else handle


class FillingFile:
    def __init__(self, handle: Any, disk: FullDisk) -> None:
        self.handle, self.disk = handle, disk

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if size > self.disk.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.disk.room -= size
        return int(self.handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> FillingFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.handle.close()


@pytest.fixture(scope="module")
def converted(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("converted") / "packed"
    assert convert(source, folder, "safetensors") == 0
    return folder


@pytest.mark.parametrize("full_at", ["model.safetensors", "config.json", "tokenizer.json"])
def test_a_full_disk_names_the_file_and_leaves_nothing(
        source: Path, converted: Path, tmp_path: Path, full_at: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    written_first = {"model.safetensors": [], "config.json": [WEIGHTS_FILE],
                     "tokenizer.json": [WEIGHTS_FILE, "config.json"]}[full_at]
    room = sum((converted / name).stat().st_size for name in written_first)
    monkeypatch.setattr(os, "fdopen", FullDisk(room).fdopen)
    dst = tmp_path / "new" / "out"
    assert convert(source, dst, "safetensors") == 1
    monkeypatch.undo()
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"minibitnet: error: {dst / full_at}: cannot write (No space left on device)")
    assert list(tmp_path.iterdir()) == []  # not even the folder "new" it made


def test_a_full_disk_keeps_the_model_dst_held(
        source: Path, old_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    dst = copy_folder(old_model, tmp_path / "out")
    before = snapshot(dst)
    monkeypatch.setattr(os, "fdopen", FullDisk(room=1000).fdopen)
    assert convert(source, dst, "gguf-i2s", "--force") == 1
    monkeypatch.undo()
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"minibitnet: error: {dst / 'ggml-model-i2_s.gguf'}: cannot write "
        "(No space left on device)")
    assert snapshot(dst) == before
    assert hidden(tmp_path) == []


# ---- (d) --force replaces the folder in one rename ----

def test_force_replaces_the_model_and_keeps_the_other_files(
        source: Path, old_model: Path, tmp_path: Path) -> None:
    dst = copy_folder(old_model, tmp_path / "out")
    (dst / "notes.txt").write_text("mine", encoding="utf-8")
    (dst / "runs").mkdir()
    (dst / "runs" / "log.txt").write_text("loss 4.1", encoding="utf-8")
    (dst / "latest").symlink_to("runs")
    legacy = dst / ".convert-abc123.partial"  # a killed run of an older minibitnet left this
    legacy.mkdir()
    (legacy / f".{WEIGHTS_FILE}.xyz.tmp").write_bytes(b"half")
    dst.chmod(0o750)
    old_inode = dst.stat().st_ino
    assert convert(source, dst, "gguf-i2s", "--force") == 0
    assert dst.stat().st_ino != old_inode  # a new folder, renamed over the old one
    assert dst.stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in dst.iterdir()) == [
        "ggml-model-i2_s.gguf", "latest", "notes.txt", "runs", "tokenizer.json",
        "tokenizer_config.json"]
    assert (dst / "runs" / "log.txt").read_text(encoding="utf-8") == "loss 4.1"
    assert os.readlink(dst / "latest") == "runs"
    assert hidden(tmp_path) == []
    assert np.array_equal(minibitnet.load(dst).logits(PROMPT),
                          minibitnet.load(source).logits(PROMPT))


def test_a_dst_that_is_a_symlink_stays_one(source: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert convert(source, tmp_path / "link", "safetensors") == 0
    assert (tmp_path / "link").is_symlink()
    assert_same_model(real, source)
    assert hidden(tmp_path) == []
