"""Atomic file writes, and bounded reads of the small files a model folder holds.

A write either completes or leaves the previous file untouched.

Every file this package writes (checkpoints, training snapshots, exported models) goes through
:func:`atomic_write`: the bytes go to a temporary file in the same folder, are flushed and
fsynced, and only then renamed over the target. ``os.replace`` within one folder is atomic on
POSIX and Windows, so a crash or Ctrl-C mid-write leaves either the old file or the new one,
never half of each.

A small file (config.json, a shard index) is read through :func:`read_bounded`, which stops one
byte past its limit, so a file that is not what it claims is refused without being read whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import MinibitnetError


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary binary file beside ``path``; on success rename it to ``path``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and ``path``
    keeps whatever it held before.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            _set_default_mode(handle.fileno())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_folder(target.parent)


def _set_default_mode(fd: int) -> None:
    """Give the file the permissions ``open()`` would (0666 less the umask), not mkstemp's 0600,
    so a written checkpoint is as readable by others as any file the user creates."""
    if not hasattr(os, "fchmod"):  # Windows: no POSIX permission bits to fix
        return
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_bounded(path: Path, limit: int, error: type[MinibitnetError], expected: str) -> bytes:
    """The bytes of the small file ``path``: at most ``limit`` of them, or ``error``.

    expected: what the file should be, for the message (e.g. "a small JSON config")
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise error(f"{path}: larger than {limit} bytes, expected {expected}")
    return data
