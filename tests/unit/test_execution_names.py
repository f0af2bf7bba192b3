"""An execution started without a name gets one of its own, as on AWS (the AWS CLI's
``start-execution`` without ``--name``): moto's interpreter named every such execution
``None``, so the second start of a state machine failed with ``ExecutionAlreadyExists``."""

from __future__ import annotations

import json
import re
import time

import boto3
import requests

from aws_endpoint import moto_endpoint

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_executions_started_without_a_name_are_each_named_and_run():
    with moto_endpoint() as url:
        requests.post(f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                      timeout=10).raise_for_status()
        sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
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
