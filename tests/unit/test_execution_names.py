"""Step Functions in the emulator as a client nobody here wrote meets it (the AWS CLI found
both): an execution started without a name gets one of its own, as on AWS (moto's
interpreter named every such execution ``None``, so the second start failed with
``ExecutionAlreadyExists``), and the interpreter's errors carry their codes."""

from __future__ import annotations

import json
import re
import time


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


def test_a_stopped_execution_keeps_why_it_was_stopped():
    """``aws stepfunctions stop-execution --error … --cause …``: moto dropped both (the
    ``ExecutionAborted`` event had empty ones; ``streamflow status`` said "ABORTED: ABORTED")."""
    with state_machines_endpoint() as (_, sfn):
        machine = sfn.create_state_machine(
            name="waits", roleArn="arn:aws:iam::123456789012:role/r",
            definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}})
        )["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, name="stopped")["executionArn"]
        sfn.stop_execution(executionArn=arn, error="Operator", cause="month_020 re-sent with fixed files")
        # the status turns ABORTED before the interpreter's thread has written the event: wait for both
        deadline = time.monotonic() + 30
        while True:
            described = sfn.describe_execution(executionArn=arn)
            events = sfn.get_execution_history(executionArn=arn)["events"]
            if described["status"] != "RUNNING" and any(e["type"] == "ExecutionAborted" for e in events):
                break
            assert time.monotonic() < deadline, (described["status"], [e["type"] for e in events])
            time.sleep(0.1)
    assert described["status"] == "ABORTED"
    assert (described["error"], described["cause"]) == ("Operator", "month_020 re-sent with fixed files")
    aborted = [e["executionAbortedEventDetails"] for e in events if e["type"] == "ExecutionAborted"]
    assert aborted == [{"error": "Operator", "cause": "month_020 re-sent with fixed files"}]
