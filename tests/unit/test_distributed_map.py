"""Step Functions Distributed Map runs in the emulator: a Map state with
``ProcessorConfig.Mode: DISTRIBUTED`` reads its items from S3 (``ItemReader``: a JSON array,
a CSV, an ``s3:listObjectsV2`` listing), runs a real Lambda handler per item through the
local executor (the handler itself reads S3) at most ``MaxConcurrency`` at a time, fails the
Map Run when an item fails (as AWS does, which moto alone does not) and lists the child
executions of the run. This guards what the sharded pipeline relies on."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path

import boto3
import pytest
import requests
from aws_endpoint import moto_endpoint
from streamflow import storage
from streamflow_local.config import StackConfig
from streamflow_local.distributed_map import THRESHOLD_ERROR, threshold_exceeded

BUCKET = "dmap-items"
ROLE = "arn:aws:iam::123456789012:role/dmap"
HANDLER = '''
import os
import boto3


def handler(event, context):
    """Counts the lines of the S3 object the item names; an item with "fail" raises."""
    if event.get("fail"):
        raise ValueError(f"shard {event['shard']} is bad")
    body = boto3.client("s3").get_object(Bucket=event["bucket"], Key=event["key"])["Body"].read()
    return {"shard": int(event["shard"]), "lines": len(body.decode().splitlines()), "pid": os.getpid()}
'''
PARTS = 5


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    from moto.awslambda.models import LambdaFunction
    from streamflow_local import executor as local_executor

    storage.s3.cache_clear()
    saved_port, saved_invoke = os.environ.get("MOTO_PORT"), getattr(LambdaFunction, local_executor.MOTO_INVOKE_ATTRIBUTE)
    with moto_endpoint() as url:
        os.environ["MOTO_PORT"] = url.rsplit(":", 1)[1]  # where moto's interpreter sends its service calls
        requests.post(f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                      timeout=10).raise_for_status()
        executor = local_executor.LocalExecutor(
            StackConfig(aws_endpoint_url=url, state_dir=Path(tmp_path_factory.mktemp("dmap-state"))))
        local_executor.install(executor)
        kw = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "testing",
                  "aws_secret_access_key": "testing"}
        clients = {name: boto3.client(name, **kw) for name in ("s3", "lambda", "stepfunctions", "iam")}
        clients["iam"].create_role(RoleName="dmap", AssumeRolePolicyDocument="{}")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", HANDLER)
        function = clients["lambda"].create_function(
            FunctionName="dmap-shard", Runtime="python3.11", Role=ROLE, Handler="app.handler",
            Code={"ZipFile": code.getvalue()}, Timeout=60)["FunctionArn"]
        s3 = clients["s3"]
        s3.create_bucket(Bucket=BUCKET)
        for i in range(PARTS):
            s3.put_object(Bucket=BUCKET, Key=f"parts/part-{i:05d}.csv", Body="\n".join(["x"] * (10 + i)))
        items = [{"shard": i, "bucket": BUCKET, "key": f"parts/part-{i:05d}.csv"} for i in range(PARTS)]
        s3.put_object(Bucket=BUCKET, Key="items.json", Body=json.dumps(items))
        s3.put_object(Bucket=BUCKET, Key="items.csv",
                      Body="shard,bucket,key\n" + "\n".join(f"{i['shard']},{BUCKET},{i['key']}" for i in items))
        s3.put_object(Bucket=BUCKET, Key="bad.json",
                      Body=json.dumps([dict(item, fail=item["shard"] == 2) for item in items]))
        try:
            yield clients, function
        finally:
            executor.shutdown()
            setattr(LambdaFunction, local_executor.MOTO_INVOKE_ATTRIBUTE, saved_invoke)
            if saved_port is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = saved_port
    storage.s3.cache_clear()


def _processor(function: str) -> dict:
    return {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "Count",
            "States": {"Count": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                 "Parameters": {"FunctionName": function, "Payload.$": "$"},
                                 "OutputPath": "$.Payload", "End": True}}}


def _json_reader(key: str) -> dict:
    return {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.bucket", "Key": key}}


def _run(aws, name: str, map_state: dict, extra_states: dict | None = None) -> dict:
    clients, _ = aws
    sfn = clients["stepfunctions"]
    definition = {"StartAt": "Shards", "States": {"Shards": map_state, **(extra_states or {})}}
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=f"{name}-1",
                              input=json.dumps({"bucket": BUCKET}))["executionArn"]
    deadline = time.monotonic() + 120
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{name} still running"
        time.sleep(0.2)
    described["map_runs"] = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    return described


def _lines(output: list[dict]) -> list[tuple[int, int]]:
    return [(item["shard"], item["lines"]) for item in output]


EXPECTED = [(i, 10 + i) for i in range(PARTS)]


def test_items_from_a_json_array_in_s3_run_a_real_handler_each(aws):
    _, function = aws
    run = _run(aws, "dmap-json", {"Type": "Map", "ItemProcessor": _processor(function), "MaxConcurrency": 2,
                                  "ItemReader": _json_reader("items.json"), "End": True})
    assert run["status"] == "SUCCEEDED"
    output = json.loads(run["output"])
    assert _lines(output) == EXPECTED
    assert 1 <= len({item["pid"] for item in output}) <= 2  # at most MaxConcurrency environments
    (map_run,) = run["map_runs"]
    described = aws[0]["stepfunctions"].describe_map_run(mapRunArn=map_run["mapRunArn"])
    assert described["status"] == "SUCCEEDED" and described["maxConcurrency"] == 2
    assert described["itemCounts"]["succeeded"] == described["itemCounts"]["total"] == PARTS


def test_items_from_a_csv_and_from_a_listing(aws):
    _, function = aws
    csv_run = _run(aws, "dmap-csv", {
        "Type": "Map", "ItemProcessor": _processor(function), "MaxConcurrency": 3, "End": True,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                       "Parameters": {"Bucket": BUCKET, "Key": "items.csv"}}})
    assert csv_run["status"] == "SUCCEEDED" and _lines(json.loads(csv_run["output"])) == EXPECTED
    listed = _run(aws, "dmap-list", {
        "Type": "Map", "ItemProcessor": _processor(function), "MaxConcurrency": 3, "End": True,
        "ItemSelector": {"shard.$": "$$.Map.Item.Index", "bucket": BUCKET, "key.$": "$$.Map.Item.Value.Key"},
        "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                       "Parameters": {"Bucket": BUCKET, "Prefix": "parts/"}}})
    assert listed["status"] == "SUCCEEDED" and _lines(json.loads(listed["output"])) == EXPECTED


def test_a_failed_item_fails_the_map_run_and_a_catch_sees_it(aws):
    _, function = aws
    run = _run(aws, "dmap-fail", {
        "Type": "Map", "ItemProcessor": _processor(function), "MaxConcurrency": 2, "Next": "Done",
        "ItemReader": _json_reader("bad.json"),
        "Catch": [{"ErrorEquals": [THRESHOLD_ERROR], "ResultPath": "$.failure", "Next": "Rejected"}]},
        {"Done": {"Type": "Succeed"}, "Rejected": {"Type": "Fail", "Error": "ShardFailed", "Cause": "a shard failed"}})
    assert run["status"] == "FAILED" and run["error"] == "ShardFailed"
    (map_run,) = run["map_runs"]
    sfn = aws[0]["stepfunctions"]
    described = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])
    assert described["status"] == "FAILED" and described["itemCounts"]["failed"] == 1
    children = sfn.list_executions(mapRunArn=map_run["mapRunArn"])["executions"]
    assert sorted(c["status"] for c in children) == ["FAILED"] + ["SUCCEEDED"] * (PARTS - 1)
    assert [c["name"] for c in sfn.list_executions(mapRunArn=map_run["mapRunArn"], statusFilter="FAILED")
            ["executions"]] == [c["name"] for c in children if c["status"] == "FAILED"]


def test_a_failed_child_is_described_with_its_input_error_and_cause(aws):
    """What a failed Map's ``<Map>NameShards`` step reads: the child's item (after
    ItemSelector), the Lambda's error type and its error JSON as the cause, as on AWS."""
    from streamflow.map_failures import failed_shards, failure_cause

    _, function = aws
    run = _run(aws, "dmap-named", {
        "Type": "Map", "Label": "CountShards", "ItemProcessor": _processor(function), "MaxConcurrency": 2,
        "ItemReader": _json_reader("bad.json"), "End": True,
        "ItemSelector": {"month": "month_009", "shard.$": "$$.Map.Item.Value.shard", "bucket": BUCKET,
                         "key.$": "$$.Map.Item.Value.key", "fail.$": "$$.Map.Item.Value.fail"}})
    assert run["status"] == "FAILED" and run["error"] == THRESHOLD_ERROR
    sfn = aws[0]["stepfunctions"]
    (map_run,) = run["map_runs"]
    (failed,) = sfn.list_executions(mapRunArn=map_run["mapRunArn"], statusFilter="FAILED")["executions"]
    child = sfn.describe_execution(executionArn=failed["executionArn"])
    assert child["status"] == "FAILED" and child["mapRunArn"] == map_run["mapRunArn"]
    assert json.loads(child["input"]) == {"month": "month_009", "shard": 2, "bucket": BUCKET,
                                          "key": "parts/part-00002.csv", "fail": True}
    assert child["error"] == "ValueError" and json.loads(child["cause"])["errorMessage"] == "shard 2 is bad"
    done = sfn.list_executions(mapRunArn=map_run["mapRunArn"], statusFilter="SUCCEEDED", maxResults=2)
    assert len(done["executions"]) == 2 and done["nextToken"]
    rest = sfn.list_executions(mapRunArn=map_run["mapRunArn"], statusFilter="SUCCEEDED", maxResults=2,
                               nextToken=done["nextToken"])["executions"]
    assert len(rest) == PARTS - 3 and not {e["name"] for e in rest} & {e["name"] for e in done["executions"]}
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.describe_execution(executionArn=failed["executionArn"] + "x")

    failures, count, total = failed_shards(sfn, run["executionArn"], "CountShards")
    assert (count, total) == (1, PARTS) and [(f.shard, f.month, f.error) for f in failures] == [
        (2, "month_009", "ValueError")]
    assert failure_cause("CountShards", failures, count, total) == \
        "1 of 5 shards failed: shard 2 (shards/month_009/shard-00002/): ValueError: shard 2 is bad"
    assert failed_shards(sfn, run["executionArn"], "OtherShards") == ([], 0, 0)


def test_a_map_failure_failed_again_by_error_path_keeps_its_states_error_name(aws):
    """Catch → Fail with ``ErrorPath: $.error.Error`` (the pipeline's <Map>Failed states), in a
    Parallel branch: the execution fails with the Map's States.ExceedToleratedFailureThreshold
    and the Fail state's cause, not moto's States.Runtime."""
    _, function = aws
    map_state = {"Type": "Map", "ItemProcessor": _processor(function), "MaxConcurrency": 2, "End": True,
                 "ItemReader": _json_reader("bad.json"),
                 "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ShardsFailed"}]}
    failed = {"Type": "Fail", "ErrorPath": "$.error.Error",
              "CausePath": "States.Format('Shards failed: {}', $.error.Cause)"}
    run = _run(aws, "dmap-errorpath", {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Shards", "States": {"Shards": map_state, "ShardsFailed": failed}}]})
    assert (run["status"], run["error"]) == ("FAILED", THRESHOLD_ERROR)
    assert run["cause"] == "Shards failed: The specified tolerated failure threshold was exceeded"


def test_a_tolerated_failure_leaves_the_run_succeeded(aws):
    _, function = aws
    run = _run(aws, "dmap-tolerated", {"Type": "Map", "ItemProcessor": _processor(function), "End": True,
                                       "ToleratedFailureCount": 1, "ItemReader": _json_reader("bad.json")})
    assert run["status"] == "SUCCEEDED"
    output = json.loads(run["output"])
    assert output[2] is None and _lines([o for o in output if o]) == [e for e in EXPECTED if e[0] != 2]


def test_child_executions_are_listed_with_their_times(aws):
    _, function = aws
    run = _run(aws, "dmap-children", {"Type": "Map", "ItemProcessor": _processor(function), "MaxConcurrency": 2,
                                      "ItemReader": _json_reader("items.json"), "End": True})
    (map_run,) = run["map_runs"]
    children = aws[0]["stepfunctions"].list_executions(mapRunArn=map_run["mapRunArn"])["executions"]
    assert len(children) == PARTS and len({c["executionArn"] for c in children}) == PARTS
    assert all(c["status"] == "SUCCEEDED" and c["startDate"] <= c["stopDate"] for c in children)
    assert all(c["mapRunArn"] == map_run["mapRunArn"] for c in children)
    with pytest.raises(aws[0]["stepfunctions"].exceptions.ResourceNotFound):
        aws[0]["stepfunctions"].list_executions(mapRunArn=map_run["mapRunArn"] + "x")


@pytest.mark.parametrize(("failed", "total", "count", "percentage", "exceeded"), [
    (0, 10, 0, 0.0, False), (1, 10, 0, 0.0, True), (1, 10, 1, 0.0, False), (2, 10, 1, 0.0, True),
    (1, 10, 0, 10.0, False), (2, 10, 0, 10.0, True), (2, 10, 5, 10.0, True), (3, 10, 2, 50.0, True),
])
def test_the_tolerated_failure_rule(failed, total, count, percentage, exceeded):
    assert threshold_exceeded(failed, total, count, percentage) is exceeded
