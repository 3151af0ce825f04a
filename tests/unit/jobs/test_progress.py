"""Progress lines: throttled to one per interval, always one at the end, with count, rate, ETA."""

from __future__ import annotations

import io

from jobs.progress import Progress


def test_progress_throttles_and_always_reports_the_end():
    out = io.StringIO()
    p = Progress("[x] scoring", 1000, every_s=3600, unit="texts", stream=out)
    for _ in range(9):
        p.update(100)
    assert out.getvalue() == ""  # within the interval, not at the end: nothing yet
    p.update(100, note="last")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[x] scoring: 1,000/1,000 texts, ")
    assert lines[0].endswith("ETA 0 s (last)")


def test_progress_every_update_with_zero_interval():
    out = io.StringIO()
    p = Progress("[x] metrics", 30, every_s=0.0, stream=out)
    for _ in range(3):
        p.update(10)
    got = [line.split(":")[1].split(",")[0].strip() for line in out.getvalue().splitlines()]
    assert got == ["10/30 rows", "20/30 rows", "30/30 rows"]
