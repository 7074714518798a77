"""A one-line progress bar for sweeps: done, failed, rate and time left, on stderr.

On a terminal it redraws in place; otherwise (a log file, a test) it prints a line
at most every LOG_EVERY_S seconds and at the end.
"""

from __future__ import annotations

import sys
import time

LOG_EVERY_S = 10.0
WIDTH = 24


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, total: int, *, already: int = 0, quiet: bool = False, stream=None):
        self.total = total
        self.already = already  # done before this run started
        self.done = 0
        self.failed = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, *, done: int | None = None, failed: int | None = None,
               add_done: int = 0, add_failed: int = 0) -> None:
        self.done = done if done is not None else self.done + add_done
        self.failed = failed if failed is not None else self.failed + add_failed
        self.draw()

    def line(self) -> str:
        finished = self.already + self.done + self.failed
        frac = finished / self.total if self.total else 1.0
        bar = "#" * int(frac * WIDTH) + "." * (WIDTH - int(frac * WIDTH))
        elapsed = time.monotonic() - self.start
        rate = (self.done + self.failed) / elapsed if elapsed > 0 else 0.0
        eta = _clock((self.total - finished) / rate) if rate > 0 else "?"
        return (f"sweep [{bar}] {self.already + self.done}/{self.total} done, "
                f"{self.failed} failed, {rate:.1f} points/s, {eta} left")

    def draw(self, final: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self.tty:
            if final or now - self.last >= 0.1:
                self.stream.write("\r" + self.line() + ("\n" if final else ""))
                self.stream.flush()
                self.last = now
        elif final or now - self.last >= LOG_EVERY_S:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self.last = now

    def close(self) -> None:
        self.draw(final=True)
