"""What durability costs: the loop with persistence on and off, side by side, and the
persistent stack's checkpoints, disk, snapshot save/load and restore on ``up``.

Each run is a private stack (``bench_stack``) with ``STREAMFLOW_PERSIST`` set for it;
on and off alternate so a busy machine slows both alike. Medians over ``repeats``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from streamflow_local.config import StackConfig
from streamflow_local.persistence import CHECKPOINT_PATH, PERSIST_ENV

from .stack_client import loop_latency
from .stack import bench_stack


def _costs(stack: StackConfig) -> dict[str, Any]:
    """On a persistent stack after the loop: its checkpoints, disk, a snapshot save and load,
    and how long a restart takes to restore the state."""
    from streamflow_local import snapshot
    from streamflow_local.stack import down, up

    costs: dict[str, Any] = {"checkpoints": requests.get(f"{stack.aws_endpoint}{CHECKPOINT_PATH}", timeout=60).json()}
    with tempfile.TemporaryDirectory(prefix="streamflow-bench-snap-") as tmp:
        target = Path(tmp) / "state.tar"
        started = time.perf_counter()
        snapshot.save(stack, target)
        costs["snapshot_save_seconds"] = round(time.perf_counter() - started, 2)
        costs["snapshot_bytes"] = target.stat().st_size
        started = time.perf_counter()
        down(stack)
        costs["down_seconds"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        snapshot.load(stack, target)
        costs["snapshot_load_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    up(stack)
    costs["up_seconds"] = round(time.perf_counter() - started, 2)
    costs["restore_seconds"] = requests.get(f"{stack.aws_endpoint}{CHECKPOINT_PATH}",
                                            timeout=60).json()["restore_seconds"]
    return costs


def _one(n_users: int, persist: bool) -> dict[str, Any]:
    saved = os.environ.get(PERSIST_ENV)
    os.environ[PERSIST_ENV] = "1" if persist else "0"
    try:
        with bench_stack() as stack:
            stack.apply_client_env()
            loop = loop_latency(stack, n_users, repeats=1)
            run: dict[str, Any] = {"loop_seconds": loop["median"]["seconds"],
                                   "warmup_seconds": loop["warmup"]["seconds"]}
            if persist:
                run.update(_costs(stack))
            return run
    finally:
        if saved is None:
            os.environ.pop(PERSIST_ENV, None)
        else:
            os.environ[PERSIST_ENV] = saved


def persistence_overhead(sizes: list[int], repeats: int = 1) -> list[dict[str, Any]]:
    results = []
    for n in sizes:
        runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
        for attempt in range(repeats):
            for mode in (("on", "off") if attempt % 2 == 0 else ("off", "on")):
                runs[mode].append(_one(n, persist=mode == "on"))
        on = statistics.median(r["loop_seconds"] for r in runs["on"])
        off = statistics.median(r["loop_seconds"] for r in runs["off"])
        results.append({"users": n, "repeats": repeats, "on": runs["on"], "off": runs["off"],
                        "median_on_seconds": round(on, 2), "median_off_seconds": round(off, 2),
                        "overhead_percent": round(100.0 * (on - off) / off, 1)})
    return results


def table_lines(entries: list[dict[str, Any]]) -> list[str]:
    lines = ["", "6. Persistence (STREAMFLOW_PERSIST=1 vs 0): loop month_001 upload → [SUMMARY], medians",
             f"   {'users':>9} {'on s':>8} {'off s':>8} {'overhead':>9} {'ckpts':>6} {'ckpt s':>7} {'ckpt max':>8} "
             f"{'disk MB':>8} {'snap MB':>8} {'save s':>7} {'load s':>7} {'restore s':>9}"]
    for entry in entries:
        costs = entry["on"][len(entry["on"]) // 2]
        ck = costs.get("checkpoints", {})
        lines.append(
            f"   {entry['users']:>9,} {entry['median_on_seconds']:>8.1f} {entry['median_off_seconds']:>8.1f} "
            f"{entry['overhead_percent']:>8.1f}% {ck.get('checkpoints', 0):>6} {ck.get('seconds_total', 0):>7.2f} "
            f"{ck.get('seconds_max', 0):>8.2f} {ck.get('disk_bytes', 0) / 1e6:>8.1f} "
            f"{costs.get('snapshot_bytes', 0) / 1e6:>8.1f} {costs.get('snapshot_save_seconds', 0):>7.2f} "
            f"{costs.get('snapshot_load_seconds', 0):>7.2f} {costs.get('restore_seconds', 0):>9.2f}")
    return lines
