"""Step Functions in the emulator as a client nobody here wrote meets it (the AWS CLI found
both): an execution started without a name gets one of its own, as on AWS (moto's
interpreter named every such execution ``None``, so the second start failed with
``ExecutionAlreadyExists``), the interpreter's errors carry their codes, and a stopped
execution says who stopped it and why, however early the stop lands."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any

import pytest
from aws_endpoint import state_machines_endpoint

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_executions_started_without_a_name_are_each_named_and_run():
    with state_machines_endpoint() as (_, sfn):
        machine = sfn.create_state_machine(
            name="unnamed", roleArn="arn:aws:iam::123456789012:role/r",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
        arns = [sfn.start_execution(stateMachineArn=machine, input=json.dumps({"n": n}))["executionArn"]
                for n in (1, 2)]
        assert len(set(arns)) == 2
        deadline = time.monotonic() + 30
        while any(sfn.describe_execution(executionArn=a)["status"] == "RUNNING" for a in arns):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        described = [sfn.describe_execution(executionArn=a) for a in arns]
    assert [d["status"] for d in described] == ["SUCCEEDED", "SUCCEEDED"]
    assert all(UUID.match(d["name"]) and d["executionArn"].endswith(":" + d["name"]) for d in described)
    assert [json.loads(d["output"]) for d in described] == [{"n": 1}, {"n": 2}]


def test_the_interpreters_errors_carry_their_codes():
    """What the AWS CLI and boto3's modelled exceptions go by: the error code."""
    import pytest

    with state_machines_endpoint() as (_, sfn):
        with pytest.raises(sfn.exceptions.InvalidDefinition) as refused:
            sfn.create_state_machine(name="broken", roleArn="arn:aws:iam::123456789012:role/r",
                                     definition=json.dumps({"StartAtt": "P", "States": {}}))
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "StartAtt" in refused.value.response["Error"]["Message"]
        machine = sfn.create_state_machine(
            name="fine", roleArn="arn:aws:iam::123456789012:role/r",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
        with pytest.raises(sfn.exceptions.InvalidExecutionInput):
            sfn.start_execution(stateMachineArn=machine, input="{not json")


def test_an_unknown_map_run_is_not_found_not_a_server_error():
    """DescribeMapRun of an ARN no execution has (the durable stack's patch of it raised
    moto's ``ResourceNotFound`` without the message it requires: an HTTP 500, retried)."""
    import pytest

    from streamflow_local import persistence

    persistence._install_map_run_patches()
    with state_machines_endpoint() as (_, sfn):
        arn = "arn:aws:states:us-east-1:123456789012:mapRun:machine/Label:0c4c1d3e-0000-4000-8000-000000000000"
        with pytest.raises(sfn.exceptions.ResourceNotFound) as missing:
            sfn.describe_map_run(mapRunArn=arn)
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400 and arn in str(missing.value)


WAITS_A_MINUTE = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}})
CAUSE = "month_020 re-sent with fixed files"


def _stopped(sfn: Any, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start a minute's Wait, stop it with an error and a cause; its description and history
    once the execution has ended and its ``ExecutionAborted`` event is written (the thread
    that runs it writes the event, then the status)."""
    machine = sfn.create_state_machine(name=f"waits-{name}", roleArn="arn:aws:iam::123456789012:role/r",
                                       definition=WAITS_A_MINUTE)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=name)["executionArn"]
    sfn.stop_execution(executionArn=arn, error="Operator", cause=CAUSE)
    deadline = time.monotonic() + 30
    while True:
        described = sfn.describe_execution(executionArn=arn)
        events = sfn.get_execution_history(executionArn=arn)["events"]
        if described["status"] != "RUNNING" and any(e["type"] == "ExecutionAborted" for e in events):
            return described, events
        assert time.monotonic() < deadline, (described["status"], [e["type"] for e in events])
        time.sleep(0.1)


def _assert_aborted_saying_why(described: dict[str, Any], events: list[dict[str, Any]]) -> None:
    assert described["status"] == "ABORTED"
    assert (described["error"], described["cause"]) == ("Operator", CAUSE)
    aborted = [e["executionAbortedEventDetails"] for e in events if e["type"] == "ExecutionAborted"]
    assert aborted == [{"error": "Operator", "cause": CAUSE}]


def test_a_stopped_execution_keeps_why_it_was_stopped():
    """``aws stepfunctions stop-execution --error … --cause …``: moto dropped both (the
    ``ExecutionAborted`` event had empty ones; ``streamflow status`` said "ABORTED: ABORTED")."""
    with state_machines_endpoint() as (_, sfn):
        _assert_aborted_saying_why(*_stopped(sfn, f"stopped-{uuid.uuid4().hex[:8]}"))


def _hold_until(reached: threading.Event, released: threading.Event, method: Any) -> Any:
    """``method`` whose first call for each object sets ``reached``, then waits until
    ``released`` is set."""
    seen = set()

    def held(self: Any, *args: Any, **kwargs: Any) -> Any:
        if id(self) not in seen:
            seen.add(id(self))
            reached.set()
            assert released.wait(30)
        return method(self, *args, **kwargs)

    return held


def _program_looks_whether_it_runs() -> tuple[Any, str]:
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    return Environment, "is_running"


def _wait_state_reads_its_seconds() -> tuple[Any, str]:
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.seconds import Seconds

    return Seconds, "_get_wait_seconds"


@pytest.mark.parametrize(("where", "events_expected"), [
    # moto skipped a stopped program's whole body, the part that writes the event: ABORTED,
    # and no ExecutionAborted at all
    (_program_looks_whether_it_runs, ["ExecutionStarted", "ExecutionAborted"]),
    # moto wakes a waiting Wait state by setting and clearing an event at once: one that had
    # not begun waiting yet waited its whole minute
    (_wait_state_reads_its_seconds, ["ExecutionStarted", "WaitStateEntered", "ExecutionAborted"]),
], ids=["before-the-first-state", "before-the-wait-begins"])
def test_a_stop_that_lands_early_still_ends_the_execution_saying_why(where: Any, events_expected: list[str],
                                                                     monkeypatch: pytest.MonkeyPatch):
    """A stop landing just after the start (a CI run under load hit the first case): the stop
    is sent once the interpreter's thread is at ``where``, which holds it until the stop has
    been answered, so the stop always lands there."""
    held_there, stop_answered = threading.Event(), threading.Event()
    owner, name = where()
    monkeypatch.setattr(owner, name, _hold_until(held_there, stop_answered, getattr(owner, name)))
    with state_machines_endpoint() as (_, sfn):
        stop = sfn.stop_execution

        def stop_then_release(**kwargs: Any) -> Any:
            assert held_there.wait(30)  # the stop lands while the thread is there, not before
            answer = stop(**kwargs)
            stop_answered.set()
            return answer

        sfn.stop_execution = stop_then_release
        described, events = _stopped(sfn, f"stopped-early-{uuid.uuid4().hex[:8]}")
    _assert_aborted_saying_why(described, events)
    assert [e["type"] for e in events] == events_expected
