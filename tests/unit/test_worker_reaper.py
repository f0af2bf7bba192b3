"""The local executor stops idle warm workers as Lambda reclaims idle environments: after an
idle limit, and, largest first, while the machine is short of memory; never one in flight.
The choice is ``reaper.choose`` (pure); two tests drive the real executor and real workers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from streamflow_local import reaper
from streamflow_local.config import StackConfig
from streamflow_local.executor import FunctionSpec, LocalExecutor
from streamflow_local.reaper import Limits, WorkerState, choose

MB = reaper.MIB
GB = 1024 * MB
NO_FLOOR = Limits(idle_s=300.0, floor=0)


def w(key: int, last_used: float, rss_mb: int = 100, in_flight: bool = False) -> WorkerState:
    return WorkerState(key=key, last_used=last_used, rss=rss_mb * MB, in_flight=in_flight)


# --- the pure choice -------------------------------------------------------------------
def test_nothing_to_stop_when_all_are_recent_and_memory_is_plenty():
    assert choose([w(1, 900.0), w(2, 999.0)], 1000.0, Limits(300.0, 2 * GB), 10 * GB) == []
    assert choose([], 1000.0, Limits(300.0, 2 * GB), 0) == []


def test_idle_limit_is_strict_longer_than_the_limit_goes():
    workers = [w(1, 700.0), w(2, 699.999), w(3, 700.001)]  # idle 300.0, 300.001, 299.999 s
    assert choose(workers, 1000.0, NO_FLOOR, None) == [(2, "idle")]


def test_idle_ones_go_longest_idle_first():
    workers = [w(1, 500.0), w(2, 100.0), w(3, 300.0), w(4, 990.0)]
    assert choose(workers, 1000.0, NO_FLOOR, None) == [(2, "idle"), (3, "idle"), (1, "idle")]


def test_an_idle_limit_of_zero_stops_nothing_for_idleness():
    assert choose([w(1, 0.0)], 1e9, Limits(idle_s=0.0, floor=0), None) == []


def test_in_flight_is_never_chosen_however_old_or_big_or_short_memory_is():
    workers = [w(1, 0.0, rss_mb=9000, in_flight=True), w(2, 0.0, rss_mb=10, in_flight=True)]
    assert choose(workers, 1e9, Limits(idle_s=0.001, floor=100 * GB), 0) == []
    mixed = workers + [w(3, 999.0, rss_mb=1)]
    assert choose(mixed, 1000.0, Limits(idle_s=0.001, floor=100 * GB), 0) == [(3, "idle")]


def test_memory_stops_largest_first_until_above_the_floor():
    workers = [w(1, 990.0, rss_mb=300), w(2, 995.0, rss_mb=900), w(3, 999.0, rss_mb=600), w(4, 998.0, rss_mb=50)]
    # 1.5 GB available, floor 2 GB: 900 MB (2) lifts it to 2.4 GB, so only that one
    assert choose(workers, 1000.0, Limits(300.0, 2048 * MB), 1536 * MB) == [(2, "memory")]
    # 0.5 GB available: 900 + 600 brings 2.0 GB = the floor exactly: enough
    assert choose(workers, 1000.0, Limits(300.0, 2048 * MB), 548 * MB) == [(2, "memory"), (3, "memory")]
    # one MB less: the next largest (300) too
    assert choose(workers, 1000.0, Limits(300.0, 2048 * MB), 547 * MB) == [
        (2, "memory"), (3, "memory"), (1, "memory")]


def test_memory_at_the_floor_exactly_is_enough_one_byte_under_is_not():
    workers = [w(1, 999.0, rss_mb=100)]
    assert choose(workers, 1000.0, Limits(300.0, 2 * GB), 2 * GB) == []
    assert choose(workers, 1000.0, Limits(300.0, 2 * GB), 2 * GB - 1) == [(1, "memory")]


def test_memory_stops_every_idle_one_when_even_all_do_not_reach_the_floor():
    workers = [w(1, 999.0, rss_mb=10), w(2, 998.0, rss_mb=20), w(3, 997.0, rss_mb=5, in_flight=True)]
    assert choose(workers, 1000.0, Limits(300.0, 4 * GB), 0) == [(2, "memory"), (1, "memory")]


def test_equal_rss_goes_least_recently_used_first():
    workers = [w(1, 999.0, rss_mb=500), w(2, 990.0, rss_mb=500), w(3, 995.0, rss_mb=500)]
    assert choose(workers, 1000.0, Limits(300.0, 2 * GB), 2 * GB - 600 * MB) == [(2, "memory"), (3, "memory")]


def test_what_the_idle_limit_stops_counts_toward_the_floor():
    old_big = w(1, 100.0, rss_mb=1000)
    recent = [w(2, 999.0, rss_mb=800), w(3, 998.0, rss_mb=200)]
    # 1.5 GB + 1 GB freed by the idle one = 2.5 GB ≥ 2 GB: no memory stops
    assert choose([old_big, *recent], 1000.0, Limits(300.0, 2 * GB), 1536 * MB) == [(1, "idle")]
    # 0.5 GB + 1 GB: still short, the largest recent one goes too, and no worker twice
    assert choose([old_big, *recent], 1000.0, Limits(300.0, 2 * GB), 512 * MB) == [(1, "idle"), (2, "memory")]


def test_unknown_memory_or_no_floor_is_no_reason_to_stop():
    workers = [w(1, 999.0, rss_mb=500)]
    assert choose(workers, 1000.0, Limits(300.0, 2 * GB), None) == []
    assert choose(workers, 1000.0, Limits(300.0, 0), 0) == []


@pytest.mark.parametrize(("total", "floor"), [
    (None, 2 * GB), (8 * GB, 2 * GB), (20 * GB, 2 * GB), (24 * GB, int(2.4 * GB)), (64 * GB, int(6.4 * GB)),
])
def test_the_default_floor_is_the_larger_of_2_gib_and_a_tenth_of_the_machine(total, floor):
    assert reaper.default_floor(total) == floor


def test_proc_fields_are_read_in_bytes_and_missing_ones_are_none(tmp_path):
    text = "MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:    2048000 kB\nHugePages_Total:       0\n"
    assert reaper.meminfo_field(text, "MemAvailable") == 2048000 * 1024
    assert reaper.meminfo_field(text, "MemTotal") == 24576000 * 1024
    assert reaper.meminfo_field(text, "HugePages_Total") == 0
    assert reaper.meminfo_field(text, "Mem") is None  # a prefix is not a field
    assert reaper.meminfo_field("VmRSS:\n", "VmRSS") is None
    (tmp_path / "meminfo").write_text(text)
    assert reaper.available_memory(tmp_path / "meminfo") == 2048000 * 1024
    assert reaper.available_memory(tmp_path / "absent") is None
    assert reaper.rss(2**22 + 12345) == 0  # no such process


def test_the_limits_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("STREAMFLOW_WORKER_IDLE_S", raising=False)
    monkeypatch.delenv("STREAMFLOW_MEMORY_FLOOR_MB", raising=False)
    assert (StackConfig().worker_idle_s, StackConfig().memory_floor_mb) == (300.0, None)
    monkeypatch.setenv("STREAMFLOW_WORKER_IDLE_S", "12.5")
    monkeypatch.setenv("STREAMFLOW_MEMORY_FLOOR_MB", "4096")
    assert (StackConfig().worker_idle_s, StackConfig().memory_floor_mb) == (12.5, 4096)
    executor = LocalExecutor(StackConfig(state_dir=tmp_path))
    try:
        assert executor.limits == Limits(idle_s=12.5, floor=4096 * MB)
    finally:
        executor.shutdown()


# --- the real executor -------------------------------------------------------------------
HANDLER = """import os, time
from pathlib import Path

def handler(event, context):
    gate = event.get("wait_for")
    while gate and not Path(gate).exists():
        time.sleep(0.01)
    return {"pid": os.getpid(), "echo": event.get("echo")}
"""


def _spec(code: Path, name: str = "reap-me") -> FunctionSpec:
    (code / "app.py").write_text(HANDLER)
    return FunctionSpec(name=name, handler="app.handler", timeout=60.0, memory=128, code_dir=code,
                        layer_dirs=(), environment=())


def _until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _call(executor: LocalExecutor, spec: FunctionSpec, event: dict) -> dict:
    import json

    payload, errored, _ = executor.invoke_spec(spec, event)
    assert not errored, payload
    return json.loads(payload)


def test_an_idle_worker_is_stopped_after_the_idle_limit_and_the_next_call_cold_starts(tmp_path):
    lines: list[str] = []
    executor = LocalExecutor(StackConfig(state_dir=tmp_path / "state", worker_idle_s=0.5, memory_floor_mb=0),
                             log=lines.append, reap_interval_s=0.05)
    spec = _spec(tmp_path)
    try:
        first = _call(executor, spec, {"echo": 1})
        for echo in range(2, 7):  # used more often than the limit (idle 0.2 s at a time), it stays warm
            assert _call(executor, spec, {"echo": echo}) == {"pid": first["pid"], "echo": echo}
            time.sleep(0.2)
        assert executor.cold_starts == {"reap-me": 1} and not lines
        assert _until(lambda: any(f"pid={first['pid']} " in line for line in lines))
        assert not executor._idle["reap-me"]
        (line,) = lines
        assert line.startswith(f"worker-reaped function=reap-me pid={first['pid']} idle_s=")
        assert line.endswith(" reason=idle") and float(line.split("idle_s=")[1].split()[0]) >= 0.5
        assert int(line.split("rss_mb=")[1].split()[0]) > 0
        again = _call(executor, spec, {"echo": 3})
        assert again["echo"] == 3 and again["pid"] != first["pid"]
        assert executor.cold_starts == {"reap-me": 2}
    finally:
        executor.shutdown()


def test_a_worker_in_flight_is_not_stopped_with_a_tiny_idle_limit_and_no_memory(tmp_path):
    lines: list[str] = []
    readings: list[int] = []

    def no_memory() -> int:  # "low" every time it is asked: below any floor
        readings.append(0)
        return 0

    executor = LocalExecutor(StackConfig(state_dir=tmp_path / "state", worker_idle_s=0.01, memory_floor_mb=1024),
                             available_memory=no_memory, log=lines.append, reap_interval_s=0.02)
    spec = _spec(tmp_path)
    gate = tmp_path / "go"
    busy: dict = {}
    caller = threading.Thread(target=lambda: busy.update(_call(executor, spec, {"wait_for": str(gate), "echo": "b"})))
    try:
        caller.start()
        assert _until(lambda: executor.cold_starts.get("reap-me") == 1)
        quick = _call(executor, spec, {"echo": "q"})  # the first is busy: a second worker
        assert executor.cold_starts["reap-me"] == 2
        # the quick one, idle now, goes (idle or memory, whichever the round sees first) …
        assert _until(lambda: any(f"pid={quick['pid']} " in line for line in lines))
        assert readings  # memory was asked, and was "low"
        time.sleep(0.5)  # ≈ 25 more rounds of the reaper with the busy one in flight
        assert caller.is_alive() and len(lines) == 1  # still running, untouched
        gate.touch()
        caller.join(timeout=30)
        assert busy["echo"] == "b" and busy["pid"] != quick["pid"]
        # released, it is idle and memory is still "low": now it goes, for memory with the figures
        assert _until(lambda: any(f"pid={busy['pid']} " in line for line in lines))
        assert all(" reason=idle" in line or " reason=memory available_mb=0 floor_mb=1024" in line for line in lines)
    finally:
        gate.touch()
        caller.join(timeout=30)
        executor.shutdown()


@pytest.mark.parametrize("returned", [False, True], ids=["still-in-flight", "used-and-back"])
def test_a_worker_taken_between_the_reapers_look_and_its_stop_is_left_alone(tmp_path, returned):
    """The round reads memory after it listed the idle workers: an invocation that takes one
    in that moment (and maybe gives it back) keeps it; the round stops nothing."""
    spec = _spec(tmp_path)
    taken = []

    def memory_while_an_invocation_starts() -> int:
        if not taken:
            worker = executor._acquire(spec)
            taken.append(worker)
            if returned:
                executor._release(worker)
        return 0

    executor = LocalExecutor(StackConfig(state_dir=tmp_path / "state", worker_idle_s=0, memory_floor_mb=1024),
                             available_memory=memory_while_an_invocation_starts, log=print, reap_interval_s=3600)
    try:
        warm = _call(executor, spec, {"echo": 1})  # one idle worker, memory "low"
        assert executor.reap() == []
        (worker,) = taken
        assert worker.alive and worker.process.pid == warm["pid"]
        assert worker.invoke({"echo": 2}) == {"ok": True, "payload": {"pid": warm["pid"], "echo": 2}}
        if not returned:
            executor._release(worker)
        assert [(w.process.pid, reason) for w, reason in executor.reap()] == [(warm["pid"], "memory")]
    finally:
        executor.shutdown()


def test_a_cold_start_short_of_memory_first_stops_an_idle_worker(tmp_path):
    """No reaper round runs here (its interval is an hour): the cold start itself makes room."""
    lines: list[str] = []
    memory = {"available": 10 * GB}
    executor = LocalExecutor(StackConfig(state_dir=tmp_path / "state", worker_idle_s=0, memory_floor_mb=1024),
                             available_memory=lambda: memory["available"], log=lines.append, reap_interval_s=3600)
    try:
        shard = _call(executor, _spec(tmp_path, "shard-fn"), {"echo": "s"})
        other = _call(executor, _spec(tmp_path, "other-fn"), {"echo": "o"})  # plenty: nothing stopped
        assert lines == [] and executor.cold_starts == {"shard-fn": 1, "other-fn": 1}
        memory["available"] = 512 * MB
        third = _call(executor, _spec(tmp_path, "third-fn"), {"echo": "t"})
        assert third["echo"] == "t"
        # both idle ones (their RSS together is far from the 512 MB missing), largest first
        assert sorted(line.split()[1:3] for line in lines) == [["function=other-fn", f"pid={other['pid']}"],
                                                               ["function=shard-fn", f"pid={shard['pid']}"]]
        sizes = [int(line.split("rss_mb=")[1].split()[0]) for line in lines]
        assert sizes == sorted(sizes, reverse=True) and executor.cold_starts["third-fn"] == 1
        assert all(line.endswith("reason=memory available_mb=512 floor_mb=1024") for line in lines)
    finally:
        executor.shutdown()
