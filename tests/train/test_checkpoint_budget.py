"""A training checkpoint (checkpoint.npz) is read within a budget: every array's header is
checked against the bytes it comes with before anything is allocated, and a file that is no
zip archive is one clean error, never a MemoryError or a zipfile traceback."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minibitnet.errors import CheckpointError
from minibitnet.train import loop


def npy_member(shape: tuple[int, ...], data: bytes) -> bytes:
    """A .npy file whose header declares ``shape`` float32, followed by ``data``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return header.getvalue() + data


def write_npz(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_header_declaring_more_than_its_bytes_is_refused_before_allocation(tmp_path):
    path = write_npz(tmp_path / "checkpoint.npz",
                     {"param/embed.npy": npy_member((10**12,), b"\0" * 16)})
    with pytest.raises(CheckpointError, match=r"checkpoint.npz: not a training checkpoint "
                                              r"\(param/embed.npy declares \(1000000000000,\) "
                                              r"float32 \(4,000,000,000,000 bytes\) in"):
        loop.load_checkpoint(path)


def test_arrays_over_the_budget_are_refused_before_any_is_read(tmp_path, monkeypatch):
    path = write_npz(tmp_path / "checkpoint.npz",
                     {"param/a.npy": npy_member((64,), b"\0" * 256),
                      "param/b.npy": npy_member((64,), b"\0" * 256)})
    monkeypatch.setattr(loop, "MAX_CHECKPOINT_BYTES", 500)
    with pytest.raises(CheckpointError, match=r"its arrays hold \d[\d,]* bytes, more than the "
                                              r"500-byte limit"):
        loop.load_checkpoint(path)


@pytest.mark.parametrize("content", [b"PK\x03\x04" + b"garbage" * 10, b"not a zip at all"])
def test_a_file_that_is_no_zip_archive_is_one_clean_error(tmp_path, content):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"checkpoint.npz: not a training checkpoint \("):
        loop.load_checkpoint(path)


def test_a_real_checkpoint_passes_the_checks(tmp_path):
    """The budget and the header check accept what save_checkpoint writes."""
    arrays = {"param/w": np.ones((3, 4), np.float32), "step": np.array(7)}
    with (tmp_path / "checkpoint.npz").open("wb") as handle:
        np.savez(handle, **arrays)
    with (tmp_path / "checkpoint.npz").open("rb") as handle:
        loop._check_array_sizes(handle)
        assert handle.tell() == 0
