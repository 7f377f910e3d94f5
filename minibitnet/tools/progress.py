"""Progress on stderr for long work: a bar with a count, a rate and the time left, and notes.

Every command that works for a while shows its progress here, so all of them look and behave
alike: convert and make-checkpoint count bytes, train counts BPE tokens and then steps, eval
counts scored tokens, bench counts transformers' decode steps; the phases of the work ("loading
...", "kernel lut on 2560x2560") are one-line notes::

    model.safetensors [############............] 590.00/1,180.00 MB  98.3 MB/s  ETA 6 s
    training [######..................] 10/40 steps  2.51 steps/s  ETA 12 s  loss 4.1234

- On a terminal the bar redraws one line in place, at most ten times a second, and a note is
  printed above it without breaking it.
- When stderr is a file or a pipe, the bar prints a plain line every tenth of the way instead
  (no carriage returns), so a log stays short and reads top to bottom.
- ``close()`` prints the final line, with the time taken in place of the time left; ``quiet``
  prints nothing at all. A rate is shown only once something was counted.

Standard output is never touched, so the output of a command can still be piped. tqdm draws the
same kind of bar; this file is small enough that the package need not depend on it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from .wording import plural, significant

MB = 1e6
BYTES = "byte"  # the unit counted in bytes and shown in MB and MB/s
WIDTH = 24  # characters between the brackets of the bar
REDRAW_S = 0.1  # a terminal line is redrawn at most this often


def format_seconds(seconds: float) -> str:
    """A duration as a person reads it: '12 s', '3 min 05 s', '2 h 07 min'."""
    whole = round(seconds)  # rounded first, so that 59.7 s reads '1 min 00 s', not '60 s'
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole // 60 % 60:02d} min"


def note(message: str, stream: TextIO | None = None, quiet: bool = False) -> None:
    """One line of news about long work (a phase starting, a model loaded) on stderr.

    Flushed at once, so the line shows before the work it announces.
    """
    if quiet:
        return
    out = stream if stream is not None else sys.stderr
    out.write(message + "\n")
    out.flush()


def _figure(value: float) -> str:
    """A rate: three significant digits below 100, whole and grouped above ('0.512', '98.3',
    '12,345')."""
    return f"{value:,.0f}" if value >= 100 else significant(value)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if isatty is not None else False


class ProgressBar:
    """Counts work towards ``total``: ``update(n)`` as it is done, ``close()`` at the end.

    Used as a context manager it closes itself at the end of the block; when the block raises,
    it only ends the terminal line, so the error message starts on a line of its own.

    total:   the count at the end, in ``unit`` (singular: "step", "token"); BYTES shows MB
    initial: the count done before this bar started (a resumed run): the rate and the time left
             count only what this bar saw
    stream:  where to draw (default: stderr at the time the bar is made); quiet: draw nothing
    clock:   seconds from any origin (default time.perf_counter; tests pass a fake one)
    """

    def __init__(self, total: int, label: str, unit: str = BYTES, *, initial: int = 0,
                 stream: TextIO | None = None, quiet: bool = False,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.total = max(total, 1)
        self.label = label
        self.unit = unit
        self.initial = initial
        self.done = initial
        self.detail = ""  # free text after the time left, e.g. "loss 4.1234"
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.clock = clock
        self.start = clock()
        self.interactive = not quiet and _is_terminal(self.stream)
        self.closed = False
        self._last_draw = self.start
        self._last_tenth = -1  # the tenth of the way last printed (files and pipes)
        self._drawn = 0  # characters of the bar on the terminal line, blanked when shorter
        if self.interactive:
            self._redraw()

    def _amount(self) -> str:
        if self.unit == BYTES:
            digits = 0 if self.total >= 100 * MB else 2
            return f"{self.done / MB:,.{digits}f}/{self.total / MB:,.{digits}f} MB"
        return f"{self.done:,}/{plural(self.total, self.unit)}"

    def _rate(self, per_second: float) -> str:
        if self.unit == BYTES:
            return f"{_figure(per_second / MB)} MB/s"
        return f"{_figure(per_second)} {self.unit}s/s"

    def line(self, final: bool = False) -> str:
        """The bar as text: label, bar, count of total, rate, time left (or taken), detail."""
        elapsed = self.clock() - self.start
        filled = int(WIDTH * min(self.done / self.total, 1.0))
        parts = [f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {self._amount()}"]
        counted = self.done - self.initial
        per_second = counted / elapsed if counted > 0 and elapsed > 0 else 0.0
        if per_second > 0:
            parts.append(self._rate(per_second))
        if final:
            parts.append(f"done in {format_seconds(elapsed)}")
        elif per_second > 0:
            parts.append(f"ETA {format_seconds(max(self.total - self.done, 0) / per_second)}")
        else:
            parts.append("ETA ?")
        if self.detail:
            parts.append(self.detail)
        return "  ".join(parts)

    def _redraw(self) -> None:
        """Rewrite the terminal line, blanking what a longer earlier line left behind."""
        text = self.line()
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(text)

    def update(self, count: int, detail: str | None = None) -> None:
        """Add ``count`` to the work done; ``detail`` replaces the text after the time left."""
        self.done += count
        if detail is not None:
            self.detail = detail
        if self.quiet:
            return
        if self.interactive:
            now = self.clock()
            if now - self._last_draw >= REDRAW_S or self.done >= self.total:
                self._last_draw = now
                self._redraw()
            return
        tenth = int(10 * self.done / self.total)
        if self._last_tenth < tenth < 10:  # the last line comes from close()
            self._last_tenth = tenth
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def note(self, message: str) -> None:
        """A line of its own above the bar (a validation loss); the bar goes on below it."""
        if self.quiet:
            return
        if not self.interactive:
            note(message, self.stream)
            return
        self.stream.write("\r" + message.ljust(self._drawn) + "\n")
        self._drawn = 0
        self._redraw()

    def close(self) -> None:
        """Print the final line, with the time taken; a second close prints nothing."""
        if self.closed:
            return
        self.closed = True
        if self.quiet:
            return
        text = self.line(final=True)
        prefix = "\r" if self.interactive else ""
        self.stream.write(prefix + text.ljust(self._drawn) + "\n")
        self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.close()
            return
        self.closed = True
        if self.interactive and self._drawn:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except OSError:  # stderr itself failed (a closed pipe): the error raised is that one
                pass
