"""A progress bar for long writes: bytes done, rate and time left, on stderr.

On a terminal the bar redraws one line in place (at most ten times a second); when stderr is a
file or a pipe it prints a line every tenth of the way, so logs stay short. Standard output is
never touched, so the output of a command can still be piped.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

MB = 1e6


def _format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


class ProgressBar:
    """Counts bytes towards ``total``; ``update(n)`` after each write, ``close()`` at the end."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.start = time.perf_counter()
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._last_tenth = -1

    def line(self) -> str:
        """The bar as text: label, bar, MB done of MB total, MB/s and the time left."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        fraction = min(self.done / self.total, 1.0)
        rate = self.done / elapsed  # bytes per second
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        filled = int(24 * fraction)
        eta = _format_seconds(left) if left != float("inf") else "?"
        digits = 0 if self.total >= 100 * MB else 2
        return (f"{self.label} [{'#' * filled}{'.' * (24 - filled)}] "
                f"{self.done / MB:,.{digits}f}/{self.total / MB:,.{digits}f} MB  "
                f"{rate / MB:.0f} MB/s  "
                f"ETA {eta}")

    def update(self, num_bytes: int) -> None:
        self.done += num_bytes
        now = time.perf_counter()
        if self.interactive:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._last_draw = now
                self.stream.write("\r" + self.line())
                self.stream.flush()
            return
        tenth = int(10 * self.done / self.total)
        if self._last_tenth < tenth < 10:  # the last line comes from close()
            self._last_tenth = tenth
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the line and report the total time."""
        elapsed = time.perf_counter() - self.start
        prefix = "\r" if self.interactive else ""
        self.stream.write(f"{prefix}{self.line()}  done in {_format_seconds(elapsed)}\n")
        self.stream.flush()
