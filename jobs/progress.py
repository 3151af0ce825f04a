"""Progress lines for long driver-side work: one line per update, at most every ``every_s``
seconds (and always at the end), with the count done, the rate and an ETA."""

from __future__ import annotations

import sys
import time


class Progress:
    """``Progress("[evaluate] scoring", total).update(n)`` prints ``[evaluate] scoring: 1,024/9,000
    texts, 210.3/s, ETA 38 s`` at most every ``every_s`` seconds, and once when the total is reached."""

    def __init__(self, what: str, total: int, *, every_s: float = 10.0, unit: str = "rows",
                 stream=None) -> None:
        self.what, self.total, self.every_s, self.unit = what, int(total), float(every_s), unit
        self.stream = stream
        self.t0 = self.last = time.time()
        self.done = 0
        self.lines = 0

    def update(self, n: int, *, note: str = "") -> None:
        self.done += int(n)
        now = time.time()
        if now - self.last < self.every_s and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        tail = f" ({note})" if note else ""
        print(f"{self.what}: {self.done:,}/{self.total:,} {self.unit}, {rate:,.1f}/s, ETA {eta:,.0f} s{tail}",
              file=self.stream or sys.stderr, flush=True)
        self.lines += 1
