"""A Distributed Map's child executions, collapsed to one line of `streamflow status`.

ValidateShards runs one child execution per shard (SplitParts one per uploaded file): listed
one by one they would bury the month's own steps, so status shows the Map state's line with
its items, how many are done or failed, and the slowest one's time (the one that bounds the
step). The Map's
``Label`` names its map runs (``…:mapRun:<machine>/<label>:<id>``), on AWS as here.
"""

from __future__ import annotations

from typing import Any

FAILED = ("FAILED", "TIMED_OUT", "ABORTED")


def map_label(map_run_arn: str) -> str:
    """``arn:…:mapRun:pipeline/ValidateShards:1234`` → ``ValidateShards``."""
    return map_run_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def collapse(children: list[dict[str, Any]]) -> dict[str, Any]:
    """Child executions (``ListExecutions(mapRunArn=…)``) → counts and the slowest one's seconds."""
    times = [(c["stopDate"] - c["startDate"]).total_seconds() for c in children if c.get("stopDate")]
    return {"shards": len(children),
            "done": sum(c["status"] == "SUCCEEDED" for c in children),
            "failed": sum(c["status"] in FAILED for c in children),
            "running": sum(c["status"] == "RUNNING" for c in children),
            "slowest_seconds": round(max(times), 1) if times else None}


ITEMS = {"SplitParts": "files"}  # what a Map's items are, when not shards


def describe(summary: dict[str, Any], state: str = "") -> str:
    """``3 shards: 3 done, 0 failed; slowest 4.2 s`` (running ones named when there are some);
    ``15 files: …`` for SplitParts."""
    text = f"{summary['shards']} {ITEMS.get(state, 'shards')}: {summary['done']} done, {summary['failed']} failed"
    if summary["running"]:
        text += f", {summary['running']} running"
    if summary["slowest_seconds"] is not None:
        text += f"; slowest {summary['slowest_seconds']:.1f} s"
    return text


def map_runs(sfn: Any, execution_arn: str) -> dict[str, dict[str, Any]]:
    """Each Map state's latest map run of the execution, collapsed, by the Map's label (none
    from an endpoint that has no map runs to list)."""
    from botocore.exceptions import ClientError

    try:
        runs = sorted(sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", []), key=lambda r: r["startDate"])
    except ClientError:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for run in runs:
        pages = sfn.get_paginator("list_executions").paginate(mapRunArn=run["mapRunArn"])
        found[map_label(run["mapRunArn"])] = collapse([e for page in pages for e in page["executions"]])
    return found


def with_map_runs(steps: list[dict[str, Any]], runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The execution's steps, each Map state's carrying its collapsed children (``shards``)."""
    return [dict(step, shards=runs[step["state"]]) if step["state"] in runs else step for step in steps]
