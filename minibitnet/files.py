"""Atomic file writes: a write either completes or leaves the previous file untouched.

Every file this package writes (checkpoints, training snapshots, exported models) goes through
:func:`atomic_write`: the bytes go to a temporary file in the same folder, are flushed and
fsynced, and only then renamed over the target. ``os.replace`` within one folder is atomic on
POSIX and Windows, so a crash or Ctrl-C mid-write leaves either the old file or the new one,
never half of each.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


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
