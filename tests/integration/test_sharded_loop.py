"""A month bigger than UsersPerShard through the real loop: ShardMonth plans the split,
SplitParts (a Distributed Map: one child execution an uploaded file) splits it by user,
ValidateShards (a Distributed Map: one child execution a shard) validates and featurises
each shard, MergeShards joins them, and the month decides what the same month uploaded whole
decides on the one-shot path; a violation in one shard rejects the month naming the shard,
and a shard whose PublishShards child fails fails the month with a cause naming that shard.

The sharded months go through a stack of their own deployed with ``UsersPerShard=1000``
(the 3,000-user test months are 3 shards there), ``ShardConcurrency=2`` and sample sizes
below the month (``DriftSampleSize=2000``, ``TrainSampleSize=1500``), so drift and training
run on the merged samples and Compare scores the holdout shard by shard; the one-shot
decision is the session stack's month_001 run against its month_000 champion (whole months,
the default sample sizes are above 3,000 users).

The sharded challenger and champion are trained on samples, so their AUCs are not the
one-shot stack's: what must match is the decision (retrained, promoted, decision, reference),
drift_share within the documented tolerance (one column), and Compare's AUCs must be exactly
the AUCs of the same two models on the whole holdout (scikit-learn on the merged features).
"""

from __future__ import annotations

import io
import json
from contextlib import AbstractContextManager
from pathlib import Path

import pandas as pd
import pytest
from clients import MODEL, alias, aws, registry, wait_for_rejection
from external import EXTERNAL
from month_tools import step_output
from streamflow.schema import MONTH_FILES as SHARDED_TABLES
from streamflow.sharding import in_shard, shard_of
from streamflow_local.config import StackConfig
from streamflow_local.stack import deployed
from streamflow_local.stack_client import function_environment, recorded_execution, upload_month, wait_for_execution
from streamflow_local.views import executions
from test_partitioned_loop import DECISION_KEYS, negative_watch_hours, write_parts

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(EXTERNAL, reason="starts a stack of its own on the local emulator")]
USERS_PER_SHARD = 1000
SHARDS = 3  # conftest.TEST_USERS = 3000
DRIFT_SAMPLE, TRAIN_SAMPLE = 2000, 1500  # of 3,000 users (about 2,400 outside the holdout)


@pytest.fixture(scope="module")
def sharded_stack(tmp_path_factory) -> StackConfig:
    config = StackConfig.on_spare_ports(state_dir=tmp_path_factory.mktemp("sharded-stack"), stack_name="sfshard")
    with deployed(config, {"UsersPerShard": str(USERS_PER_SHARD), "ShardConcurrency": "2",
                              "DriftSampleSize": str(DRIFT_SAMPLE), "TrainSampleSize": str(TRAIN_SAMPLE)}):
        yield config


def _finished(stack: StackConfig, folder: Path) -> dict:
    description = recorded_execution(stack, folder)
    arn = description["executionArn"] if description else upload_month(stack, folder).execution_arn
    return wait_for_execution(stack, arn, timeout=900)


def _decision(stack: StackConfig, description: dict, validated_by: str) -> dict:
    assert description["status"] == "SUCCEEDED", description.get("cause")
    summary = json.loads(description["output"])
    compare = (step_output(stack, description["executionArn"], "Compare") or {}).get("compare") or {}
    validation = (step_output(stack, description["executionArn"], validated_by) or {}).get("validation") or {}
    return {**{k: summary.get(k) for k in DECISION_KEYS},
            "auc": {k: compare.get(k) for k in ("new_auc", "prod_auc", "delta")},
            "rows": validation.get("rows")}


def _shard_children(stack: StackConfig, execution_arn: str, label: str = "ValidateShards") -> list[dict]:
    """The child executions of the execution's map run of the Map state ``label``."""
    from streamflow_local.map_runs import map_label

    sfn = aws(stack, "stepfunctions")
    (map_run,) = [run for run in sfn.list_map_runs(executionArn=execution_arn)["mapRuns"]
                  if map_label(run["mapRunArn"]) == label]
    return sfn.list_executions(mapRunArn=map_run["mapRunArn"])["executions"]


def _shard_features(stack: StackConfig, month: str) -> pd.DataFrame:
    """The sharded month's features: its shards' files (it has no whole-month file)."""
    from streamflow.sharding import shard_features_key
    from streamflow_local.stack_client import data_bucket

    s3 = aws(stack, "s3")
    return pd.concat(pd.read_parquet(io.BytesIO(s3.get_object(Bucket=data_bucket(stack),
                                                              Key=shard_features_key(month, n))["Body"].read()))
                     for n in range(SHARDS))


def _online_items(stack: StackConfig) -> dict[str, dict]:
    from streamflow_local.stack_client import stack_description

    table = stack_description(stack)["outputs"]["FeatureTableName"]
    pages = aws(stack, "dynamodb").get_paginator("scan").paginate(TableName=table)
    return {item["user_id"]["S"]: item for page in pages for item in page["Items"]}


def _published_as_the_whole_month(sharded: StackConfig, whole: StackConfig, execution_arn: str) -> None:
    """PublishShards (a child execution a shard) then MarkMonthPublished: every user's online
    item is the one the one-shot publish writes from the whole month's features file (built
    by the session stack), and the sharded stack wrote no whole-month features file."""
    from streamflow.online_store import _wire_item
    from streamflow_local.stack_client import data_bucket

    children = _shard_children(sharded, execution_arn, "PublishShards")
    assert [c["status"] for c in children] == ["SUCCEEDED"] * SHARDS
    online = step_output(sharded, execution_arn, "MarkMonthPublished")["online"]
    assert online["online_items"] == 3000 and online["shards"] == SHARDS
    assert step_output(sharded, execution_arn, "PublishOnlineFeatures") is None  # not the one-shot task
    body = aws(whole, "s3").get_object(Bucket=data_bucket(whole), Key="features/month_001/features.parquet")["Body"]
    expected = pd.read_parquet(io.BytesIO(body.read()))
    items = {user: item for user, item in _online_items(sharded).items() if item["month"]["S"] == "month_001"}
    assert sorted(items) == sorted(map(str, expected.index)) and len(items) == 3000  # month_000's leavers aside
    for user_id, row in zip(expected.index, expected.to_dict("records")):
        assert items[str(user_id)] == _wire_item(str(user_id), "month_001", row), user_id
    missing = aws(sharded, "s3").list_objects_v2(Bucket=data_bucket(sharded), Prefix="features/month_001/")
    assert "features/month_001/features.parquet" not in [o["Key"] for o in missing.get("Contents", [])]


def test_a_sharded_month_decides_as_the_whole_month(stack, months, sharded_stack, tmp_path):
    champion = _finished(sharded_stack, months[0])  # sharded too: 3,000 users
    assert champion["status"] == "SUCCEEDED", champion.get("cause")
    folder = write_parts(months[1], tmp_path)
    upload = upload_month(sharded_stack, folder)
    described = wait_for_execution(sharded_stack, upload.execution_arn, timeout=900)
    sharded = _decision(sharded_stack, described, "MergeShards")
    sharding = step_output(sharded_stack, upload.execution_arn, "ShardMonth")["sharding"]
    assert sharding["shards"] == SHARDS and sharding["users"] == 3000 and sharding["concurrency"] == 2
    uploaded = list(folder.rglob("*.csv"))  # SplitParts: a child per uploaded file, each split it
    assert sharding["parts"] == len(uploaded) > len(SHARDED_TABLES)
    assert [c["status"] for c in _shard_children(sharded_stack, upload.execution_arn, "SplitParts")] == \
        ["SUCCEEDED"] * len(uploaded)
    children = _shard_children(sharded_stack, upload.execution_arn)
    assert [c["status"] for c in children] == ["SUCCEEDED"] * SHARDS
    assert step_output(sharded_stack, upload.execution_arn, "Validate") is None  # not the one-shot path
    (row,) = [e for e in executions(sharded_stack, "month_001")]  # what `streamflow status` shows
    (shown,) = [s for s in row["steps"] if s["state"] == "ValidateShards"]
    assert shown["shards"]["shards"] == shown["shards"]["done"] == SHARDS and shown["shards"]["failed"] == 0
    assert 0 < shown["shards"]["slowest_seconds"] <= shown["seconds"]
    (published,) = [s for s in row["steps"] if s["state"] == "PublishShards"]
    assert published["shards"]["shards"] == published["shards"]["done"] == SHARDS

    assert _finished(stack, months[0])["status"] == "SUCCEEDED"
    whole = _decision(stack, _finished(stack, months[1]), "Validate")
    sampled = ("drift_share", "auc")
    assert {k: v for k, v in sharded.items() if k not in sampled} == {k: v for k, v in whole.items()
                                                                      if k not in sampled}
    assert sharded["retrained"] is True and sharded["rows"]["users.csv"] == 3000
    drift = step_output(sharded_stack, upload.execution_arn, "DetectDrift")["drift"]
    assert drift["measured_users"] == {"reference": DRIFT_SAMPLE, "current": DRIFT_SAMPLE, "sample_size": DRIFT_SAMPLE}
    assert abs(sharded["drift_share"] - whole["drift_share"]) <= 1 / drift["columns"] + 1e-4
    _compare_is_exact(sharded_stack, upload.execution_arn, sharded["auc"])
    assert "scored" not in step_output(sharded_stack, upload.execution_arn, "ScoreShards")  # not in the state:
    scored = [_record(sharded_stack, "month_001", n, "scored") for n in range(SHARDS)]  # each child's, in S3
    assert [(s["shard"], s["execution"]) for s in scored] == [(n, upload.execution_name) for n in range(SHARDS)]
    assert {(s["challenger"], s["champion"]) for s in scored} == {(versions_compared(sharded_stack, upload))}
    assert [c["status"] for c in _shard_children(sharded_stack, upload.execution_arn, "ScoreShards")] == \
        ["SUCCEEDED"] * SHARDS
    lines = [json.loads(line) for line in (sharded_stack.logs_dir / "sfshard-compare.log").read_text().splitlines()
             if line.startswith("{")]
    merged = [line for line in lines if line.get("message") == "holdout AUCs from the shards' pairs"
              and line.get("execution") == upload.execution_name]
    assert len(merged) == 1 and merged[0]["shards"] == SHARDS  # Compare used the pairs, scored nothing again
    _published_as_the_whole_month(sharded_stack, stack, upload.execution_arn)


def _record(stack: StackConfig, month: str, shard: int, step: str) -> dict:
    """A Map child's record (``shard_records``: shards/<month>/shard-NNNNN/<step>.json)."""
    from streamflow.shard_records import record_key
    from streamflow_local.stack_client import data_bucket

    body = aws(stack, "s3").get_object(Bucket=data_bucket(stack), Key=record_key(month, shard, step))["Body"]
    return json.loads(body.read())


def versions_compared(stack: StackConfig, upload) -> tuple[str, str | None]:
    """(challenger, champion) as Compare saw them."""
    output = step_output(stack, upload.execution_arn, "Compare")
    return str(output["challenger"]["version"]), output["compare"]["prod_version"]


def _compare_is_exact(stack: StackConfig, execution_arn: str, auc: dict) -> None:
    """The challenger trained on the stratified sample; Compare's AUCs, scored shard by shard,
    are the two models' AUCs on the whole holdout of the merged features."""
    from streamflow.registry import load_version
    from streamflow.split import split_by_user
    from streamflow.training import evaluate_auc

    output = step_output(stack, execution_arn, "Compare")
    versions = {"new_auc": output["challenger"]["version"], "prod_auc": output["compare"]["prod_version"]}
    run = registry(stack).get_run(output["challenger"]["run_id"])
    assert run.data.params["train_rows"] == str(TRAIN_SAMPLE)
    assert int(run.data.params["training_users"]) > TRAIN_SAMPLE
    holdout = split_by_user(_shard_features(stack, "month_001"))[1]
    for key, version in versions.items():
        assert version is not None
        assert auc[key] == round(evaluate_auc(load_version(stack.mlflow_uri, MODEL, version), holdout), 4)


def test_a_violation_in_one_shard_rejects_the_month_naming_the_shard(sharded_stack, months, tmp_path):
    bad = "usage_agg_30d/part-00001.csv"
    bad_user: list[str] = []
    upload = upload_month(sharded_stack, write_parts(months[2], tmp_path, edit=negative_watch_hours(bad, bad_user)))
    description = wait_for_execution(sharded_stack, upload.execution_arn, timeout=600)
    assert description["status"] == "FAILED"
    # every part has rows of every shard, so the shard's second part holds the bad row
    where = in_shard(shard_of(bad_user[0], SHARDS), bad)
    assert description["cause"].startswith("MergeShards failed: month_002 breaks the data contract: ")
    assert f"{where}:watch_hours_30d: must not be negative" in description["cause"]
    assert "\n" not in description["cause"]
    _, report = wait_for_rejection(sharded_stack, "month_002")
    assert report["stage"] == "validate"
    assert [(v["file"], v["column"], v["rule"]) for v in report["violations"]] == [
        (where, "watch_hours_30d", "must not be negative")]
    assert any(key.endswith(bad) for key in report["quarantined"])
    children = _shard_children(sharded_stack, upload.execution_arn)
    assert [c["status"] for c in children] == ["SUCCEEDED"] * SHARDS  # a violation is reported, not raised


def _newest_online_month(stack: StackConfig) -> str | None:
    """The month MarkMonthPublished recorded last (the order table's ``online#newest_month``)."""
    from streamflow.month_order import KEY, ONLINE_MONTH_KEY

    item = aws(stack, "dynamodb").get_item(TableName=f"{stack.stack_name}-month-order",
                                           Key={KEY: {"S": ONLINE_MONTH_KEY}}, ConsistentRead=True).get("Item")
    return item["month"]["S"] if item else None


def publish_reads_from(stack: StackConfig, bucket: str) -> AbstractContextManager[None]:
    """The Publish function reads the shards' features from ``bucket`` for the block (its
    ``DATA_BUCKET``, restored after): a configuration change, as a redeploy would make."""
    return function_environment(stack, f"{stack.stack_name}-publish", DATA_BUCKET=bucket)


def test_a_failed_publish_shard_fails_the_month_naming_the_shard_and_its_error(sharded_stack, months, monkeypatch,
                                                                                capsys):
    """One PublishShards child fails (its Lambda raises: shard 1's features are not where the
    function reads them; shards 0 and 2 are, with no rows): the Map Run fails with
    States.ExceedToleratedFailureThreshold, and the month's cause names the step, the shard,
    its S3 key and the child's own error, in the execution and in `streamflow status`.
    Production does not move and the month is not marked published."""
    from streamflow.online_store import MODEL_FEATURES
    from streamflow.sharding import shard_features_key
    from streamflow_local import cli

    champion = _finished(sharded_stack, months[0])
    assert champion["status"] == "SUCCEEDED", champion.get("cause")
    production = alias(sharded_stack, "Production")
    online_month = _newest_online_month(sharded_stack)
    s3, fault = aws(sharded_stack, "s3"), f"{sharded_stack.stack_name}-publish-fault"
    s3.create_bucket(Bucket=fault)
    empty = io.BytesIO()
    pd.DataFrame({column: pd.Series(dtype="float64") for column in MODEL_FEATURES}).to_parquet(empty)
    for shard in (0, 2):  # shard 1's file is missing: its child raises NoSuchKey
        s3.put_object(Bucket=fault, Key=shard_features_key("month_002", shard), Body=empty.getvalue())

    with publish_reads_from(sharded_stack, fault):
        upload = upload_month(sharded_stack, months[2])
        description = wait_for_execution(sharded_stack, upload.execution_arn, timeout=900)
    assert description["status"] == "FAILED"
    assert description["error"] == "States.ExceedToleratedFailureThreshold"
    cause = description["cause"]
    assert cause.startswith("PublishShards failed: 1 of 3 shards failed: shard 1 "
                            "(shards/month_002/shard-00001/features.parquet): "), cause
    assert "NoSuchKey" in cause and "The specified key does not exist." in cause and "\n" not in cause
    children = _shard_children(sharded_stack, upload.execution_arn, "PublishShards")
    assert [c["status"] for c in children] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]

    assert alias(sharded_stack, "Production") == production  # nothing promoted
    assert step_output(sharded_stack, upload.execution_arn, "MarkMonthPublished") is None  # not marked published
    assert _newest_online_month(sharded_stack) == online_month != "month_002"

    (row,) = [e for e in executions(sharded_stack, "month_002") if e["name"] == upload.execution_name]
    assert row["cause"] == cause  # what `streamflow status` shows
    (published,) = [s for s in row["steps"] if s["state"] == "PublishShards"]
    assert (published["shards"]["shards"], published["shards"]["failed"]) == (SHARDS, 1)
    assert published["status"] == "FAILED"
    for key, value in (("STREAMFLOW_AWS_PORT", sharded_stack.aws_port), ("STREAMFLOW_MLFLOW_PORT",
                       sharded_stack.mlflow_port), ("STREAMFLOW_API_PORT", sharded_stack.api_port),
                       ("STREAMFLOW_STATE_DIR", sharded_stack.state_dir),
                       ("STREAMFLOW_STACK_NAME", sharded_stack.stack_name)):
        monkeypatch.setenv(key, str(value))
    capsys.readouterr()
    code = cli.main(["status", "month_002"])
    shown = " ".join(capsys.readouterr().out.split())
    print(f"\ncause: {cause}\nstreamflow status: …{shown[-500:]}")
    assert code == 1 and f"month_002: FAILED: {cause}" in shown


PAYLOAD_SLACK = 2048  # bytes: month names, counts and keys may differ by a few digits, not per shard


def largest_payload(stack: StackConfig, execution_arn: str) -> tuple[int, str]:
    """The largest input, output or parameters (bytes of JSON) of any event of the execution's
    history, and which event it was: what AWS limits to 256 KiB a state."""
    from streamflow_local.stack_client import execution_history

    largest, state = (0, ""), ""
    for event in execution_history(stack, execution_arn):
        state = (event.get("stateEnteredEventDetails") or {}).get("name", state)  # the latest state entered
        for key, details in event.items():
            if not key.endswith("EventDetails") or not isinstance(details, dict):
                continue
            for field in ("input", "output", "parameters"):
                if isinstance(details.get(field), str) and len(details[field].encode()) > largest[0]:
                    largest = (len(details[field].encode()), f"{event['type']} ({state}) {field}")
    return largest


def test_the_state_does_not_grow_with_the_shards_or_the_files(sharded_stack, tmp_path):
    """Two sharded months through the whole loop, 2 shards of 2 parts a table and 6 shards of
    6 parts a table: the largest state payload of the second is the first's, within a small
    constant. The Maps' results and the verified files' digests live in S3, not in the state,
    so a month of S = 500 shards and 600 uploaded files stays under AWS's 256 KiB."""
    from streamflow.partitioned_month import write_partitioned_month

    largest: dict[int, tuple[int, str]] = {}
    for month, shards in ((3, 2), (4, 6)):
        folder = write_partitioned_month(tmp_path, month, n_users=shards * USERS_PER_SHARD, parts=shards)
        with function_environment(sharded_stack, f"{sharded_stack.stack_name}-ingest", DRIFT_THRESHOLD="0.0"):
            upload = upload_month(sharded_stack, folder)  # threshold 0: retrained, so ScoreShards runs
            description = wait_for_execution(sharded_stack, upload.execution_arn, timeout=900)
        largest[shards] = largest_payload(sharded_stack, upload.execution_arn)
        print(f"\n{shards} shards, {shards * len(SHARDED_TABLES)} files: largest state payload {largest[shards]}")
        assert description["status"] == "SUCCEEDED", description.get("cause")
        assert step_output(sharded_stack, upload.execution_arn, "ShardMonth")["sharding"]["shards"] == shards
        for label in ("SplitParts", "ValidateShards", "PublishShards", "ScoreShards"):  # every Map ran
            children = _shard_children(sharded_stack, upload.execution_arn, label)
            assert [c["status"] for c in children] == ["SUCCEEDED"] * len(children) and len(children) >= shards
    assert largest[6][0] <= largest[2][0] + PAYLOAD_SLACK, largest
