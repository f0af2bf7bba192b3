"""An execution's history is read a page at a time, as AWS serves it: the emulator pages
GetExecutionHistory like AWS (100 events by default, at most 1,000 a call, ``nextToken``),
and ``streamflow status`` / ``wait`` read every page, so a long execution (the sharded
months have thousands of events) is never cut at the first page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aws_endpoint import state_machines_endpoint
from streamflow_local.config import StackConfig
from streamflow_local.stack_client import execution_history, execution_steps, wait_for_execution

STATES = 600  # Pass states in a chain: two events each, 1,200+ events in all


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with state_machines_endpoint() as (url, sfn):
        names = [f"Step{i:03d}" for i in range(STATES)]
        states = {name: ({"Type": "Pass", "Next": names[i + 1]} if i + 1 < STATES else {"Type": "Pass", "End": True})
                  for i, name in enumerate(names)}
        machine = sfn.create_state_machine(
            name="long", definition=json.dumps({"StartAt": names[0], "States": states}),
            roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, name="long-1")["executionArn"]
        deadline = time.monotonic() + 120
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        config = StackConfig(aws_endpoint_url=url, state_dir=Path(tmp_path_factory.mktemp("state")))
        yield sfn, arn, config, names


def test_the_emulator_pages_the_history_as_aws_does(run):
    sfn, arn, _, _ = run
    first = sfn.get_execution_history(executionArn=arn)
    assert len(first["events"]) == 100 and first["nextToken"]
    biggest = sfn.get_execution_history(executionArn=arn, maxResults=1000)
    assert len(biggest["events"]) == 1000 and biggest["nextToken"]
    rest = sfn.get_execution_history(executionArn=arn, maxResults=1000, nextToken=biggest["nextToken"])
    assert "nextToken" not in rest
    ids = [e["id"] for e in biggest["events"] + rest["events"]]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) > 1000
    newest = sfn.get_execution_history(executionArn=arn, maxResults=3, reverseOrder=True)["events"]
    assert [e["id"] for e in newest] == ids[::-1][:3]


def test_an_unreadable_token_is_refused(run):
    sfn, arn, _, _ = run
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.get_execution_history(executionArn=arn, nextToken="not-a-token")


def test_every_page_is_read(run):
    sfn, arn, config, names = run
    events = execution_history(config, arn)
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "ExecutionSucceeded" and len(events) > 2 * STATES


def test_steps_of_a_long_execution_are_all_there(run):
    _, arn, config, names = run
    steps = execution_steps(config, arn)
    assert [s["state"] for s in steps] == names
    assert all(s["status"] == "DONE" for s in steps)


def test_waiting_reads_the_history_only_for_someone_who_hears_the_steps(run, monkeypatch):
    """The history costs the emulator ≈ 20 times a DescribeExecution: a wait nobody hears
    the steps of (the benchmark's, the tests') must not read it while the month runs."""
    from streamflow_local import stack_client

    _, arn, config, names = run
    reads = []
    real = stack_client.execution_history
    monkeypatch.setattr(stack_client, "execution_history", lambda c, a: reads.append(a) or real(c, a))
    assert wait_for_execution(config, arn)["status"] == "SUCCEEDED" and reads == []
    heard = []
    assert wait_for_execution(config, arn, on_step=heard.append)["status"] == "SUCCEEDED"
    assert reads == [arn] and [s["state"] for s in heard] == names


def test_a_caught_map_failure_shows_the_map_failed(monkeypatch):
    """A Distributed Map whose run failed (then caught into its cause chain) is FAILED in
    `streamflow status`, not DONE, even with a Map state running beside it in a Parallel."""
    from datetime import datetime, timedelta, timezone

    from streamflow_local import stack_client

    start = datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)

    def event(second: float, kind: str, name: str | None = None) -> dict:
        found = {"type": kind, "timestamp": start + timedelta(seconds=second)}
        if kind.endswith("StateEntered"):
            found["stateEnteredEventDetails"] = {"name": name}
        elif kind.endswith("StateExited"):
            found["stateExitedEventDetails"] = {"name": name}
        return found

    history = [event(0, "ParallelStateEntered", "FeaturesReady"), event(0, "MapStateEntered", "ScoreShards"),
               event(1, "MapStateEntered", "PublishShards"), event(3, "MapRunFailed"),
               event(3, "MapStateFailed"), event(3, "MapStateExited", "PublishShards"),
               event(4, "TaskStateEntered", "PublishShardsNameShards"),
               event(5, "TaskStateExited", "PublishShardsNameShards"), event(6, "MapStateExited", "ScoreShards"),
               event(6, "FailStateEntered", "PublishShardsFailed"), event(6, "ExecutionFailed")]
    monkeypatch.setattr(stack_client, "execution_history", lambda config, arn: history)
    steps = {s["state"]: (s["status"], s["seconds"]) for s in execution_steps(None, "arn")}
    assert steps["PublishShards"] == ("FAILED", 2.0)
    assert steps["ScoreShards"] == ("DONE", 6.0) and steps["PublishShardsNameShards"] == ("DONE", 1.0)
    assert steps["PublishShardsFailed"][0] == "FAILED"
