"""The floor beside the loop: a floor process that times one run each time it is asked."""

from __future__ import annotations

import os

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


def test_the_floor_gets_the_threads_the_loops_training_function_gets(monkeypatch):
    from streamflow_local.cpu_share import THREAD_LIMIT_VARIABLES, vcpus_for
    from streamflow_local.config import PROJECT_ROOT
    from streamflow_local.template import Stack, load_template

    from bench.run import floor_environment

    monkeypatch.setenv("OMP_NUM_THREADS", "8")  # the caller's own setting is not the function's
    stack = Stack(load_template(PROJECT_ROOT / "template.yaml"), name="t", region="us-east-1")
    share = vcpus_for(int(stack.function_properties("TrainFunction")["MemorySize"]), os.cpu_count() or 1)
    env = floor_environment()
    assert {name: env[name] for name in THREAD_LIMIT_VARIABLES} == dict.fromkeys(THREAD_LIMIT_VARIABLES, str(share))
