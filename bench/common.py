"""Shared helpers: timing, peak memory, medians."""

from __future__ import annotations

import resource
import statistics
import time
from contextlib import contextmanager
from typing import Iterator


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB: ``VmHWM`` (``ru_maxrss`` would
    carry the parent's size across fork + exec on Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(out: dict, key: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        out[key] = round(time.perf_counter() - started, 4)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return float(ordered[index])
