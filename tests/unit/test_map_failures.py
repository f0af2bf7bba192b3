"""A failed Distributed Map's cause names the shards that failed (map_failures.py): the
shard, its S3 key, the step and the child's own error and message; a bounded look-up (the
first few named, the rest counted); the generic cause kept when the look-up finds nothing
or fails, so a month never fails without a cause."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError
from streamflow import map_failures
from streamflow.causes import MAX_MESSAGE
from streamflow.map_failures import ShardFailure, failed_shards, failure_cause, latest_failed_run, shard_failure
from streamflow.settings import Settings

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:streamflow-pipeline"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:streamflow-pipeline:month_002-abc"
GENERIC = {"Error": "States.ExceedToleratedFailureThreshold",
           "Cause": "The specified tolerated failure threshold was exceeded"}
SETTINGS = Settings.from_env({})
NO_SUCH_KEY = "An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does not exist."


def _lambda_cause(error_type: str, message: str) -> str:
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": "r-1",
                       "stackTrace": ['  File "/var/task/app.py", line 9, in handler\n']})


def _child(shard: int, error: str = "NoSuchKey", message: str = NO_SUCH_KEY, step: str = "PublishShards",
           extra: dict | None = None) -> dict:
    return {"executionArn": f"arn:aws:states:us-east-1:123456789012:execution:streamflow-pipeline/{step}:c{shard}",
            "status": "FAILED", "error": error, "cause": _lambda_cause(error, message),
            "input": json.dumps({"month": "month_002", "shard": shard, "shards": 3, **(extra or {})})}


def test_a_lambda_child_names_its_shard_error_type_and_message():
    failure = shard_failure(_child(1))
    assert failure == ShardFailure(shard=1, month="month_002", error="NoSuchKey", message=NO_SUCH_KEY)
    assert failure_cause("PublishShards", [failure], 1, 3) == (
        "1 of 3 shards failed: shard 1 (shards/month_002/shard-00001/features.parquet): " + NO_SUCH_KEY)


def test_the_key_is_what_the_step_reads_of_its_shard():
    failure = shard_failure(_child(2, "ValueError", "bad row"))
    assert "(shards/month_002/shard-00002/features.parquet): ValueError: bad row" in failure_cause(
        "ScoreShards", [failure], 1, 3)
    assert "(shards/month_002/shard-00002/): ValueError: bad row" in failure_cause("ValidateShards", [failure], 1, 3)


def test_a_split_child_names_its_uploaded_file():
    def part(name: str, message: str = NO_SUCH_KEY) -> ShardFailure:
        return shard_failure({"error": "NoSuchKey", "cause": _lambda_cause("NoSuchKey", message),
                              "input": json.dumps({"month": "month_002", "table": "users.csv", "name": name,
                                                   "index": 1, "shards": 3, "sha256": "", "execution": "e"})})
    failures = [part("users/part-00001.csv", "gone"), part("labels/part-00000.csv", "other")]
    assert failures[0].file == "users/part-00001.csv" and failures[0].shard is None
    assert failure_cause("SplitParts", failures, 2, 10) == (
        "2 of 10 parts failed: part labels/part-00000.csv (months/month_002/labels/part-00000.csv): NoSuchKey: "
        "other; part users/part-00001.csv: NoSuchKey: gone")


def test_a_cause_that_is_not_lambda_json_is_the_message_and_no_cause_leaves_the_error():
    timed_out = shard_failure({"error": "States.Timeout", "cause": "",
                               "input": json.dumps({"month": "month_002", "shard": 0})})
    assert failure_cause("PublishShards", [timed_out], 1, 2) == (
        "1 of 2 shards failed: shard 0 (shards/month_002/shard-00000/features.parquet): States.Timeout")
    plain = shard_failure({"error": "Sandbox.Timedout", "cause": "Task timed out after 1.00 seconds",
                           "input": json.dumps({"month": "month_002", "shard": 0})})
    assert failure_cause("PublishShards", [plain], 1, 2).endswith(
        ": Sandbox.Timedout: Task timed out after 1.00 seconds")


def test_a_child_without_a_readable_item_still_counts():
    unknown = shard_failure({"error": "ValueError", "cause": _lambda_cause("ValueError", "boom"), "input": "[1]"})
    assert unknown.shard is None
    assert failure_cause("PublishShards", [unknown], 1, 4) == "1 of 4 shards failed: a shard: ValueError: boom"


def test_several_failures_are_named_in_shard_order_the_same_error_once_the_rest_counted():
    failures = [shard_failure(_child(7, "ValueError", "other")), shard_failure(_child(2)), shard_failure(_child(5))]
    cause = failure_cause("PublishShards", failures, 40, 400)
    assert cause.startswith("40 of 400 shards failed: shard 2 (shards/month_002/shard-00002/features.parquet): "
                            "An error occurred (NoSuchKey)")
    assert cause.endswith("; shard 5: the same; shard 7: ValueError: other; and 37 more")
    assert len(cause) <= MAX_MESSAGE


def test_the_cause_stays_one_short_line():
    long = "x" * 2000 + "\nTraceback (most recent call last):\n  /var/task/app.py"
    failures = [shard_failure(_child(n, "RuntimeError", f"{n} {long}")) for n in range(3)]
    cause = failure_cause("PublishShards", failures, 3, 3)
    assert "\n" not in cause and len(cause) <= MAX_MESSAGE
    assert cause.startswith("3 of 3 shards failed: shard 0 (shards/month_002/shard-00000/features.parquet): "
                            "RuntimeError: 0 xxx")
    assert cause.endswith("…; and 2 more")  # the others do not fit: counted, never cut off


def test_counts_missing_from_the_map_run_fall_back_to_the_named_children():
    assert failure_cause("PublishShards", [shard_failure(_child(1))], None, None).startswith("1 shard failed: shard 1")


def test_the_latest_failed_run_of_the_step_is_chosen():
    def run(label: str, status: str, minute: int) -> dict:
        return {"mapRunArn": f"arn:aws:states:us-east-1:1:mapRun:streamflow-pipeline/{label}:{label}{minute}",
                "status": status, "startDate": dt.datetime(2026, 11, 30, 12, minute, tzinfo=dt.UTC)}
    runs = [run("ValidateShards", "SUCCEEDED", 1), run("PublishShards", "FAILED", 2), run("ScoreShards", "FAILED", 3),
            run("PublishShards", "FAILED", 4), run("PublishShards", "SUCCEEDED", 5)]
    assert latest_failed_run(runs, "PublishShards").endswith("/PublishShards:PublishShards4")
    assert latest_failed_run(runs, "ScoreShards").endswith("/ScoreShards:ScoreShards3")
    assert latest_failed_run(runs, "ValidateShards") is None


class FakeStepFunctions:
    """The four calls map_failures makes, answered from a list of children; counts the calls."""

    def __init__(self, children: list[dict], total: int, failed: int | None = None, fail_on: str | None = None):
        self.children, self.total, self.fail_on = children, total, fail_on
        self.failed = len(children) if failed is None else failed
        self.calls: list[str] = []
        self.run = "arn:aws:states:us-east-1:123456789012:mapRun:streamflow-pipeline/PublishShards:r1"

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail_on:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, name)

    def get_paginator(self, name: str):
        assert name == "list_map_runs"
        fake = self

        class Pages:
            def paginate(self, executionArn: str):
                assert executionArn == EXECUTION
                fake._call("ListMapRuns")
                yield {"mapRuns": [{"mapRunArn": fake.run, "executionArn": EXECUTION, "status": "FAILED",
                                    "startDate": dt.datetime(2026, 11, 30, tzinfo=dt.UTC)}]}
        return Pages()

    def describe_map_run(self, mapRunArn: str) -> dict:
        self._call("DescribeMapRun")
        return {"mapRunArn": mapRunArn, "status": "FAILED",
                "itemCounts": {"total": self.total, "failed": self.failed, "timedOut": 0, "aborted": 0}}

    def list_executions(self, mapRunArn: str, statusFilter: str, maxResults: int) -> dict:
        self._call("ListExecutions")
        assert mapRunArn == self.run and statusFilter == "FAILED"
        return {"executions": [{"executionArn": c["executionArn"]} for c in self.children[:maxResults]]}

    def describe_execution(self, executionArn: str) -> dict:
        self._call("DescribeExecution")
        return next(c for c in self.children if c["executionArn"] == executionArn)


def test_the_look_up_is_bounded_whatever_the_number_of_failed_shards():
    sfn = FakeStepFunctions([_child(n) for n in range(50)], total=400)
    failures, failed, total = failed_shards(sfn, EXECUTION, "PublishShards")
    assert (len(failures), failed, total) == (map_failures.NAMED, 50, 400)
    assert sfn.calls == ["ListMapRuns", "DescribeMapRun", "ListExecutions"] + ["DescribeExecution"] * map_failures.NAMED
    assert failed_shards(sfn, EXECUTION, "ScoreShards") == ([], 0, 0)  # no run of that step failed


@pytest.fixture
def step_functions(monkeypatch):
    """explain_map_failure's boto3 client, a fake."""
    holder: dict = {}
    monkeypatch.setattr("boto3.client", lambda service, *a, **k: holder["sfn"])
    return holder


def _event() -> dict:
    return {"action": "map_failure", "step": "PublishShards", "month": "month_002", "execution": "month_002-abc",
            "execution_arn": EXECUTION, "error": dict(GENERIC)}


def test_the_step_rewrites_the_cause_and_keeps_the_error(step_functions):
    step_functions["sfn"] = FakeStepFunctions([_child(1)], total=3)
    result = map_failures.explain_map_failure(SETTINGS, _event())
    assert result == {"Error": GENERIC["Error"], "Cause": "1 of 3 shards failed: shard 1 "
                      "(shards/month_002/shard-00001/features.parquet): " + NO_SUCH_KEY}


@pytest.mark.parametrize("fail_on", ["ListMapRuns", "DescribeMapRun", "ListExecutions", "DescribeExecution"])
def test_a_failed_look_up_keeps_the_generic_cause(step_functions, fail_on):
    step_functions["sfn"] = FakeStepFunctions([_child(1)], total=3, fail_on=fail_on)
    assert map_failures.explain_map_failure(SETTINGS, _event()) == GENERIC


def test_no_failed_child_keeps_the_generic_cause(step_functions):
    step_functions["sfn"] = FakeStepFunctions([], total=3)
    assert map_failures.explain_map_failure(SETTINGS, _event()) == GENERIC


def test_the_order_function_routes_the_action():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "functions" / "order" / "app.py"
    spec = importlib.util.spec_from_file_location("order_app_for_map_failures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.ACTIONS["map_failure"] is map_failures.explain_map_failure
