"""The floor beside the loop: a floor process that times one run each time it is asked."""

from __future__ import annotations

from bench.floor import STEPS
from bench.run import FloorBeside


def test_the_floor_process_times_one_run_per_request_and_sums_them_up_at_the_end():
    floor = FloorBeside(300)
    try:
        floor.run_once()
        floor.run_once()
        summary = floor.summary()
    finally:
        floor.close()
    assert summary["users"] == 300 and len(summary["runs"]) == 2
    assert set(summary["steps"]) == set(STEPS)
    assert summary["seconds"] in summary["runs"] and all(run > 0 for run in summary["runs"])
    assert 0.0 <= summary["drift_share"] <= 1.0 and 0.0 <= summary["new_auc"] <= 1.0
    assert floor.process.returncode == 0
