"""Atomic file writes, and bounded reads of the small files a model folder holds.

A write either completes or leaves the previous file untouched.

Every file this package writes (checkpoints, training snapshots, exported models) goes through
:func:`atomic_write`: the bytes go to a temporary file in the same folder, are flushed and
fsynced, and only then renamed over the target. ``os.replace`` within one folder is atomic on
POSIX and Windows, so a crash or Ctrl-C mid-write leaves either the old file or the new one,
never half of each.

Every file this package reads is opened through :func:`open_regular`, which refuses anything but
a regular file (a symlink to one is fine: the Hugging Face cache is all symlinks) by its type, and
never blocks doing so: a FIFO, ``/dev/zero``, a terminal or a socket where a model file belongs is
named as what it is. A small file (config.json, tokenizer.json, a text to score) is read whole
through :func:`read_bounded`, which refuses a file over the budget of its kind before reading it,
so a file that is not what it claims is refused without being read into memory.

A whole folder (``minibitnet convert``'s output) is written as :mod:`minibitnet.folders` says.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import ArgumentError, MinibitnetError


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
    fsync_folder(target.parent)


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


def fsync_folder(folder: Path) -> None:
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


# What a file that is not a regular file is, for the message that refuses it.
_SPECIAL_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _check_regular(path: Path, mode: int, error: type[MinibitnetError], expected: str) -> None:
    """``error`` unless ``mode`` (an ``st_mode``) is a regular file's."""
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a folder, expected {expected}")
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "not a regular file")
    raise error(f"{path}: is {kind}, expected a regular file ({expected})")


def open_regular(path: str | Path, error: type[MinibitnetError], expected: str,
                 missing: str | None = None) -> BinaryIO:
    """``path`` opened for binary reading, after checking by type that it is a regular file.

    error:    the area's MinibitnetError subclass; every refusal is one line naming ``path``
    expected: what the file should be, for the message (e.g. "a small JSON config")
    missing:  what the message says of a file that is not there, after its path (default
              "no such file (expected EXPECTED)")

    subtle: a plain ``open()`` of a FIFO blocks until a writer comes, and ``/dev/zero`` reads
    forever. So the type is checked by ``stat`` first, the file is opened with O_NONBLOCK (which
    never waits for a FIFO's writer) and checked again with ``fstat`` on the opened descriptor,
    which catches a file swapped for a FIFO between the two; only then is O_NONBLOCK cleared.
    """
    path = Path(path)
    try:
        _check_regular(path, os.stat(path).st_mode, error, expected)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise error(f"{path}: {missing or f'no such file (expected {expected})'}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        _check_regular(path, os.fstat(fd).st_mode, error, expected)
        if hasattr(os, "set_blocking"):  # POSIX; Windows has no O_NONBLOCK to clear
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | Path, limit: int, error: type[MinibitnetError], expected: str,
                 missing: str | None = None) -> bytes:
    """The bytes of the small regular file ``path``, refused if it holds more than ``limit``.

    The size is checked before anything is read, and the read stops one byte past ``limit`` in
    case the file grew since; special files and folders are refused as :func:`open_regular` says.
    error, expected, missing: as for :func:`open_regular`
    """
    path = Path(path)
    too_large = _over_limit(path, limit, expected)
    with open_regular(path, error, expected, missing) as handle:
        if os.fstat(handle.fileno()).st_size > limit:
            raise error(too_large)
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise error(too_large)
    return data


def _over_limit(where: str | Path, limit: int, expected: str) -> str:
    """The message for a read over its budget."""
    return f"{where}: larger than the {limit:,}-byte limit, expected {expected}"


def _utf8(data: bytes, where: str | Path) -> str:
    """``data`` decoded as UTF-8, or an ArgumentError naming ``where`` and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArgumentError(f"{where}: not UTF-8 text (byte {exc.start})") from None


def read_text_stream(stream: BinaryIO, limit: int, where: str, expected: str) -> str:
    """The UTF-8 text of an open stream (a prompt piped in), refused past ``limit`` bytes
    without reading more than one byte beyond them.

    where: what the messages call the stream, e.g. "standard input"
    raises: ArgumentError for an over-budget or non-UTF-8 stream
    """
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ArgumentError(_over_limit(where, limit, expected))
    return _utf8(data, where)


def read_text_argument(path: str | Path, limit: int, flag: str) -> str:
    """The UTF-8 text of the file a command-line flag names (a text to score, training data).

    flag: the flag, which every message starts with, e.g. "--data: corpus.txt: no such file"
    raises: ArgumentError for a missing, special, over-budget or non-UTF-8 file
    """
    try:
        data = read_bounded(path, limit, ArgumentError, "a UTF-8 text file", "no such file")
    except ArgumentError as exc:
        raise ArgumentError(f"{flag}: {exc}") from None
    return _utf8(data, f"{flag}: {path}")


@contextlib.contextmanager
def naming_os_errors(path: str | Path) -> Iterator[None]:
    """Re-raise an OSError of the block that names no file, or the temporary beside ``path``,
    as naming ``path``: a disk that fills up mid-write is reported against the file written.

    subtle: a BrokenPipeError passes unchanged, since it comes from the progress on stderr (a
    closed ``| head``), never from a regular file, and the command line ends quietly on it.
    """
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        named = exc.filename
        if named is None or (isinstance(named, str) and Path(named).parent == Path(path).parent):
            exc.filename, exc.filename2 = str(path), None
        raise
