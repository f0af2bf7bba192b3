"""Which idle warm workers the local executor stops, and the machine readings it decides on.

Lambda reclaims an execution environment that has been idle for some minutes, and any idle
one whenever it needs the capacity. The local executor kept every worker forever, so a
Distributed Map step left up to ``ShardConcurrency`` idle workers per function, each holding
the memory of the biggest shard it had read (CPython does not hand it back to the OS):
≈ 30 workers, ≈ 10 GB, after a 5M-user month's shard steps (``bench/README.md`` §4c).

The decision (``choose``) is pure: the executor reads the clock, ``/proc/meminfo`` and each
idle worker's ``VmRSS``, and acts on what ``choose`` returns. The readers return ``None`` (or
0) when ``/proc`` cannot be read, and then memory is simply not a reason to stop anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Reason = Literal["idle", "memory"]

MIB = 1024 * 1024
# The floor under which idle workers are stopped for memory: the larger of 2 GiB and 10 % of
# the machine. 2 GiB leaves room for about four of the 5M month's shard tasks at their peak
# (≈ 550 MB each, bench/README.md §4c) to grow between two reaper rounds before the kernel's
# OOM killer picks a process (perhaps the emulator, which holds the month); by hand, workers
# were stopped at 2.2 GB left. 10 %: the same margin in proportion on a bigger machine.
MIN_FLOOR_BYTES = 2048 * MIB
FLOOR_SHARE_OF_TOTAL = 0.10


@dataclass(frozen=True)
class WorkerState:
    """One worker as the decision sees it. ``key`` is opaque (the executor uses ``id``)."""

    key: int
    last_used: float  # monotonic seconds when its last invocation ended (or its init)
    rss: int  # resident bytes; 0 when unknown
    in_flight: bool = False


@dataclass(frozen=True)
class Limits:
    """``idle_s``: stop a worker idle for longer (0: never for idleness). ``floor``: bytes of
    available memory under which idle workers are stopped (0: never for memory)."""

    idle_s: float
    floor: int


def choose(workers: Sequence[WorkerState], now: float, limits: Limits,
           available: int | None) -> list[tuple[int, Reason]]:
    """The workers to stop, in the order to stop them, each with its reason.

    First every worker idle for longer than ``limits.idle_s`` (longest idle first). Then, while
    ``available`` plus the RSS of the workers chosen so far is below ``limits.floor``, the
    remaining idle workers, largest RSS first (ties: least recently used first). Largest first
    gets back above the floor with the fewest cold starts, and it spares small workers (the
    API function's, whose warmth /predict's latency relies on) that a least-recently-used
    order would stop first while a month's big shard workers sit idle. RSS over-counts what a
    stop frees (shared library pages stay cached): the next round reads ``MemAvailable`` again
    and goes on if it must. A worker in flight is never chosen."""
    idle = [w for w in workers if not w.in_flight]
    chosen: list[tuple[int, Reason]] = []
    expired: list[WorkerState] = []
    if limits.idle_s > 0:
        expired = sorted((w for w in idle if now - w.last_used > limits.idle_s), key=lambda w: (w.last_used, w.key))
        chosen += [(w.key, "idle") for w in expired]
    if available is None or limits.floor <= 0:
        return chosen
    freed = sum(w.rss for w in expired)
    gone = {w.key for w in expired}
    for w in sorted((w for w in idle if w.key not in gone), key=lambda w: (-w.rss, w.last_used, w.key)):
        if available + freed >= limits.floor:
            break
        chosen.append((w.key, "memory"))
        freed += w.rss
    return chosen


def default_floor(total: int | None) -> int:
    """The default memory floor for a machine of ``total`` bytes (unknown: 2 GiB)."""
    return max(MIN_FLOOR_BYTES, int((total or 0) * FLOOR_SHARE_OF_TOTAL))


def meminfo_field(text: str, name: str) -> int | None:
    """A ``/proc/meminfo`` or ``/proc/<pid>/status`` field (``"MemAvailable"``, ``"VmRSS"``)
    in bytes; None when it is missing or not a number."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            parts = value.split()
            if parts and parts[0].isdigit():
                return int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
            return None
    return None


def _read_field(path: Path, name: str) -> int | None:
    try:
        return meminfo_field(path.read_text(), name)
    except OSError:
        return None


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The kernel's estimate of memory available without swapping (bytes), or None."""
    return _read_field(meminfo, "MemAvailable")


def total_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    return _read_field(meminfo, "MemTotal")


def rss(pid: int) -> int:
    """Resident bytes of process ``pid`` (0 when it is gone or ``/proc`` is unreadable)."""
    return _read_field(Path(f"/proc/{pid}/status"), "VmRSS") or 0
