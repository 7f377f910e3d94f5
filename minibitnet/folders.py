"""Whole folders written under a temporary name beside the target, under a lock.

A model folder is written as ``.NAME.minibitnet-partial-<pid>`` beside NAME and renamed to NAME
once every file in it is complete, so a kill at any point leaves NAME absent, or as it was, or
complete. A NAME already there is renamed to ``.NAME.minibitnet-old-<pid>`` first and removed
after the new one is in place: a kill between the two renames leaves both, which
:func:`remove_stale_temporaries` turns back into the old NAME. The writer holds an flock on
``.NAME.minibitnet-lock`` throughout, so two writers of NAME cannot both proceed, and whatever
of our temporaries the holder finds was left by a process that is gone.

Without fcntl (Windows) there is no lock: two writers are not kept apart, and temporaries are
left for the user to remove, since a live writer's cannot be told from a dead one's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from .files import fsync_folder

try:
    import fcntl  # the lock of a folder being written (POSIX)
    HAS_FLOCK = True
except ImportError:  # Windows: folders are written without a lock (see folder_lock)
    HAS_FLOCK = False

PARTIAL = "minibitnet-partial"  # a folder being written
ASIDE = "minibitnet-old"  # the folder being replaced, until the new one is in place
LOCK = "minibitnet-lock"  # the lock file of the folder


def temporary_beside(target: Path, kind: str) -> Path:
    """``.NAME.<kind>-<pid>`` beside ``target``: the name of this process's temporary."""
    return target.parent / f".{target.name}.{kind}-{os.getpid()}"


def _our_temporaries(target: Path, kind: str) -> list[Path]:
    """The folders beside ``target`` named as a temporary of ``kind`` (of any process)."""
    pattern = re.compile(re.escape(f".{target.name}.{kind}-") + r"[0-9]+")
    return sorted(path for path in target.parent.iterdir()
                  if pattern.fullmatch(path.name) and path.is_dir() and not path.is_symlink())


@contextlib.contextmanager
def folder_lock(target: Path) -> Iterator[bool]:
    """Hold the lock of writing the folder ``target`` for the block; remove it after.

    yields: True, or False where there is no fcntl and so no lock (Windows)
    raises: BlockingIOError at once (no waiting) when another process holds it

    subtle: the lock file is removed when the holder is done, so a waiter may have locked a
    file that is no longer at its path; it checks that its file is still the one there, and
    tries again with the new one if not. Otherwise two processes could each hold a lock on a
    different file of the same name.
    """
    if not HAS_FLOCK:
        yield False
        return
    path = target.parent / f".{target.name}.{LOCK}"
    while True:  # again only when a holder removed the file we locked: it finished meanwhile
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        except FileNotFoundError:  # removed between our flock and our stat
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield True
    finally:
        with contextlib.suppress(FileNotFoundError):  # its folder may be gone: a failed run
            os.unlink(path)
        os.close(fd)


def remove_stale_temporaries(target: Path) -> list[str]:
    """Put right what killed writers of ``target`` left beside it; only under :func:`folder_lock`.

    A folder set aside with ``target`` missing is the old ``target`` (a kill between the two
    renames of :func:`replace_folder`): it is renamed back. Every other partial or set-aside
    folder of ours is removed, with the temporary files inside it.
    returns: one line per folder restored or removed, for a note
    """
    done = []
    aside = _our_temporaries(target, ASIDE)
    if aside and not os.path.lexists(target):
        os.rename(aside[-1], target)
        done.append(f"restored {target} from {aside[-1].name}, left by an interrupted write")
    for stale in _our_temporaries(target, PARTIAL) + _our_temporaries(target, ASIDE):
        shutil.rmtree(stale)
        done.append(f"removed {stale}, left by an interrupted write")
    return done


def make_partial_folder(target: Path) -> Path:
    """A new empty folder beside ``target`` to write its files into, with the permissions
    ``mkdir`` gives (0777 less the umask)."""
    partial = temporary_beside(target, PARTIAL)
    os.mkdir(partial)
    return partial


def _link_or_copy(source: str, destination: str) -> str:
    """A hard link (no bytes copied, so no room needed), or a copy where links are refused;
    never given a symlink (:func:`_carry` and ``copytree(symlinks=True)`` copy those as links)."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
    return destination


def _carry(entry: Path, into: Path) -> None:
    """Put ``entry`` (a file, link or folder) into the folder ``into`` under its own name."""
    destination = into / entry.name
    if entry.is_symlink():
        os.symlink(os.readlink(entry), destination)
    elif entry.is_dir():
        shutil.copytree(entry, destination, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(entry), str(destination))


def replace_folder(partial: Path, target: Path, keep: Callable[[str], bool]) -> None:
    """Rename the complete folder ``partial`` to ``target``, in one step for a reader.

    A ``target`` already there hands its entries that ``keep`` accepts (by name) and that
    ``partial`` lacks to the new folder (hard links: no bytes copied) with its permissions, is
    renamed aside, and is removed once ``partial`` is in its place; should that second rename
    fail, it is renamed back. A kill leaves ``target`` old or new, or (between the two renames)
    absent with the old folder aside, which :func:`remove_stale_temporaries` restores.
    """
    if not os.path.lexists(target):
        os.rename(partial, target)
        fsync_folder(target.parent)
        return
    for entry in sorted(target.iterdir()):
        if keep(entry.name) and not os.path.lexists(partial / entry.name):
            _carry(entry, partial)
    shutil.copymode(target, partial)
    fsync_folder(partial)
    aside = temporary_beside(target, ASIDE)
    os.rename(target, aside)
    try:
        os.rename(partial, target)
    except BaseException:
        os.rename(aside, target)
        raise
    fsync_folder(target.parent)
    shutil.rmtree(aside, ignore_errors=True)
