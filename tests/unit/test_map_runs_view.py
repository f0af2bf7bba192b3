"""`streamflow status` collapses a Distributed Map's child executions (one per shard) into
the Map state's line: shards, done / failed / running, the slowest shard's time."""

from __future__ import annotations

import datetime as dt

from streamflow_local.map_runs import collapse, describe, map_label, with_map_runs

T0 = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.timezone.utc)


def _child(status: str, seconds: float | None) -> dict:
    child = {"status": status, "startDate": T0}
    if seconds is not None:
        child["stopDate"] = T0 + dt.timedelta(seconds=seconds)
    return child


def test_children_collapse_to_counts_and_the_slowest_time():
    summary = collapse([_child("SUCCEEDED", 2.0), _child("SUCCEEDED", 7.25), _child("FAILED", 1.0),
                        _child("RUNNING", None), _child("TIMED_OUT", 3.0)])
    assert summary == {"shards": 5, "done": 2, "failed": 2, "running": 1, "slowest_seconds": 7.2}
    assert describe(summary) == "5 shards: 2 done, 2 failed, 1 running; slowest 7.2 s"
    assert describe(collapse([_child("RUNNING", None)])) == "1 shards: 0 done, 0 failed, 1 running"
    assert describe(collapse([_child("SUCCEEDED", 4.0)] * 3)) == "3 shards: 3 done, 0 failed; slowest 4.0 s"
    assert describe(collapse([_child("SUCCEEDED", 1.0)] * 15), "SplitParts") == "15 files: 15 done, 0 failed; slowest 1.0 s"


def test_a_map_run_is_found_by_its_label_and_joins_its_step():
    arn = "arn:aws:states:us-east-1:123456789012:mapRun:sf-pipeline/ValidateShards:0f1e2d"
    assert map_label(arn) == "ValidateShards"
    runs = {"ValidateShards": collapse([_child("SUCCEEDED", 1.0)])}
    steps = [{"state": "ShardMonth", "status": "DONE", "seconds": 1.0},
             {"state": "ValidateShards", "status": "DONE", "seconds": 3.0}]
    shown = with_map_runs(steps, runs)
    assert "shards" not in shown[0] and shown[1]["shards"]["shards"] == 1
    assert "shards" not in steps[1]  # the steps given are not changed
