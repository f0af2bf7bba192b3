"""Time order through a stack of its own (it needs several champions): months decided in
month order whatever the upload order, backfills that cannot crown the past, and the
ReferenceMonth modes.

The tests run in file order and build on each other: a sequential upload of month_000 …
month_003 is the baseline; the same data uploaded again under a fresh model name, the last
three months at once and in reverse order, must decide the same.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from streamflow.generator import write_month
from streamflow.schema import MANIFEST_NAME
from streamflow_local.config import StackConfig
from streamflow_local.deploy import deploy
from streamflow.ingest import execution_name
from streamflow_local.stack_client import (
    Upload,
    data_bucket,
    function_environment,
    grep_logs,
    seed,
    stack_description,
    state_machine_arn,
    upload_month,
    wait_for_execution,
)
from streamflow_local.views import executions
from streamflow_local.stack import deployed

from clients import aws, wait_for_json
from external import EXTERNAL
from month_tools import reference_mode, step_output

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(EXTERNAL, reason="starts a stack of its own on the local emulator")]
USERS = 3000
MODEL_A, MODEL_B = "streamflow_churn", "streamflow_churn_b"
RESULTS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def order_stack(tmp_path_factory) -> StackConfig:
    with deployed(StackConfig.on_spare_ports(state_dir=tmp_path_factory.mktemp("order-stack"),
                                             stack_name="sforder")) as config:
        yield config


@pytest.fixture(scope="module")
def data(order_stack) -> list[Path]:
    return seed(order_stack.state_dir / "data", months=4, n_users=USERS)


def _model() -> str:
    return RESULTS.get("model", MODEL_A)


def _registry(stack) -> MlflowClient:
    return MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)


def _production(stack) -> tuple[str, str]:
    """(Production's version, the month it was trained on)."""
    version = _registry(stack).get_model_version_by_alias(_model(), "Production")
    return version.version, version.tags["month"]


def _again(folder: Path, out: Path, indent: int) -> Path:
    """The same month, the same CSV bytes; a manifest written differently (another content
    hash: a new execution, as a re-upload by another tool would start)."""
    copy = out / folder.name
    shutil.copytree(folder, copy)
    manifest = json.loads((folder / MANIFEST_NAME).read_bytes())
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest, indent=indent))
    return copy


def _finish(stack, upload) -> dict:
    description = wait_for_execution(stack, upload.execution_arn, timeout=900)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    return json.loads(description["output"])


def _upload_at_once(stack, folders: list[Path]) -> list[Upload]:
    """CSVs of every month first, then the manifests back to back (as a backfill script)."""
    s3, bucket = aws(stack, "s3"), data_bucket(stack)
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.name != MANIFEST_NAME:
                s3.upload_file(str(path), bucket, f"months/{folder.name}/{path.name}")
    uploads = []
    executions = state_machine_arn(stack).replace(":stateMachine:", ":execution:")
    for folder in folders:
        body = (folder / MANIFEST_NAME).read_bytes()
        s3.put_object(Bucket=bucket, Key=f"months/{folder.name}/{MANIFEST_NAME}", Body=body)
        name = execution_name(folder.name, body)
        uploads.append(Upload(month=folder.name, execution_name=name, execution_arn=f"{executions}:{name}", seconds=0))
    return uploads


def _decisions(summaries: dict[str, dict]) -> dict[str, tuple]:
    return {month: (s["decision"], s["retrained"], s["promoted"], s["production_version"], s["reference_month"])
            for month, s in summaries.items()}


def test_sequential_upload_decides_each_month_against_the_champions_month(order_stack, data):
    summaries = {folder.name: _finish(order_stack, upload_month(order_stack, folder)) for folder in data}
    assert summaries["month_000"]["reference_month"] is None  # no champion yet: nothing measured
    assert summaries["month_000"]["decision"] == "promote"
    assert summaries["month_001"]["reference_month"] == "month_000"  # the seed's case
    assert summaries["month_001"]["decision"] == "promote"
    version, month = _production(order_stack)
    assert month == "month_001"
    # later months are measured against what the champion learned (month_001), not month_000
    assert summaries["month_002"]["reference_month"] == summaries["month_003"]["reference_month"] == "month_001"
    RESULTS["sequential"] = _decisions(summaries)
    RESULTS["sequential_production"] = (version, month)


def test_months_uploaded_at_once_in_reverse_order_decide_as_one_by_one(order_stack, data, tmp_path):
    assert "sequential" in RESULTS, "runs after the sequential baseline"
    # the same data again, from scratch: a fresh model (no champion), no online month yet
    deploy(order_stack, {"ModelName": MODEL_B})
    RESULTS["model"] = MODEL_B
    aws(order_stack, "dynamodb").delete_item(TableName=stack_description(order_stack)["outputs"]["MonthOrderTableName"],
                                             Key={"entry": {"S": "online#newest_month"}})
    folders = [_again(folder, tmp_path, indent=1) for folder in data]
    summaries = {"month_000": _finish(order_stack, upload_month(order_stack, folders[0]))}
    uploads = _upload_at_once(order_stack, list(reversed(folders[1:])))  # month_003, month_002, month_001
    for upload in uploads:
        summaries[upload.month] = _finish(order_stack, upload)
    assert _decisions(summaries) == RESULTS["sequential"]
    assert _production(order_stack) == RESULTS["sequential_production"]
    # month_003 started first but waited for the earlier months in flight at its gate: month_002,
    # and month_001 when its execution had registered by then (on a busy machine it may start
    # later; the gate re-checks the months in flight at every release, so the order holds
    # either way: the decisions above are the sequential ones)
    waited = step_output(order_stack, uploads[0].execution_arn, "AwaitEarlierMonths")["order"]["waited_for"]
    assert waited and set(waited) <= {"month_001", "month_002"}
    versions = _registry(order_stack).search_model_versions(f"name='{MODEL_B}'")
    assert sorted((int(v.version), v.tags["month"]) for v in versions)[:2] == [(1, "month_000"), (2, "month_001")]


def test_an_older_month_after_a_newer_champion_is_stale_and_production_stays(order_stack, tmp_path):
    production = _production(order_stack)
    assert production[1] == "month_001"
    backfill = write_month(tmp_path, 0, n_users=USERS, seed=43)  # month_000 again, other data
    upload = upload_month(order_stack, backfill)
    summary = _finish(order_stack, upload)
    assert summary["decision"] == "stale_month" and summary["promoted"] is False
    assert summary["reference_month"] == "month_001"  # what the champion learned
    assert _production(order_stack) == production
    assert summary["retrained"] is True  # drift measured, challenger trained and compared …
    tags = _registry(order_stack).get_model_version(_model(), summary["challenger_version"]).tags
    assert tags["decision"] == "stale_month" and tags["month"] == "month_000"  # … but not promoted
    assert tags["decision_champion_month"] == "month_001" and tags["reference_month"] == "month_001"
    lines = [r["message"] for r in grep_logs(order_stack, ("[SUMMARY]",), execution=upload.execution_name)]
    assert lines and lines[0].endswith(f"production_version={production[0]} decision=stale_month reference=month_001")
    # its features stay out of the online table: month_003's are there
    published = step_output(order_stack, upload.execution_arn, "FeaturesReady")
    assert published["online"] == {"table": published["online"]["table"], "online_items": 0, "skipped": True,
                                   "newest_online_month": "month_003"}


@pytest.mark.parametrize(("mode", "expected"), [("champion", "month_001"), ("previous", "month_002"),
                                                ("month_000", "month_000")])
def test_each_reference_mode_picks_the_month_it_says(order_stack, data, tmp_path, mode, expected):
    folder = _again(data[3], tmp_path, indent={"champion": 2, "previous": 3}.get(mode, 4))  # month_003 once more
    with reference_mode(order_stack, mode):
        upload = upload_month(order_stack, folder)
        summary = _finish(order_stack, upload)
    assert summary["reference_month"] == expected
    drift = step_output(order_stack, upload.execution_arn, "FeaturesReady")["drift"]
    assert drift["reference_mode"] == mode and drift["reference_month"] == expected
    lines = [r["message"] for r in grep_logs(order_stack, ("[SUMMARY]",), execution=upload.execution_name)]
    assert lines and lines[0].endswith(f" reference={expected}")
    if summary["retrained"]:
        tags = _registry(order_stack).get_model_version(_model(), summary["challenger_version"]).tags
        assert tags["reference_month"] == expected


def test_an_earlier_month_that_fails_does_not_hold_later_ones(order_stack, tmp_path):
    """month_004 is held at the approval gate when month_005 parks at its own gate; then
    month_004 fails (its rejection cannot be recorded: that function names a model the
    registry does not have, an error not retried, unlike an unreachable registry's) and never
    decides: the execution status change event releases month_005."""
    sfn = aws(order_stack, "stepfunctions")
    weak = next(v.version for v in _registry(order_stack).search_model_versions(f"name='{_model()}'")
                if v.tags.get("month") == "month_000" and v.tags.get("decision") == "promote")
    _registry(order_stack).set_registered_model_alias(_model(), "Production", weak)  # month_004 will win
    with function_environment(order_stack, f"{order_stack.stack_name}-ingest", REQUIRE_APPROVAL="true"):
        held = upload_month(order_stack, write_month(tmp_path, 4, n_users=USERS))
        pending = wait_for_json(order_stack, "approvals/month_004.json", timeout=900)
    later = upload_month(order_stack, write_month(tmp_path, 5, n_users=USERS))
    _wait_for(order_stack, later.execution_arn, "AwaitEarlierMonths")
    shown = next(e for e in executions(order_stack, "month_005") if e["name"] == later.execution_name)
    assert shown["status"] == "RUNNING" and shown["waiting_for"] == ["month_004"]  # it waits …
    with function_environment(order_stack, f"{order_stack.stack_name}-rejection", MODEL_NAME="no_such_model"):
        sfn.send_task_failure(taskToken=pending["task_token"], error="Rejected",
                              cause=json.dumps({"by": "test", "reason": "no"}))
        failed = wait_for_execution(order_stack, held.execution_arn, timeout=900)
    assert failed["status"] == "FAILED" and failed["cause"].startswith("RecordRejection failed")
    summary = _finish(order_stack, later)  # … and goes on once month_004 ended without deciding
    assert summary["month"] == "month_005" and summary["reference_month"] == "month_000"
    table = stack_description(order_stack)["outputs"]["MonthOrderTableName"]
    entries = aws(order_stack, "dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    assert [e for e in entries if e["entry"]["S"].startswith("execution#")] == []  # nothing left in flight


def _wait_for(stack, execution_arn: str, state: str, timeout: float = 600) -> None:
    sfn = aws(stack, "stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        if any(e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state for e in events):
            return
        time.sleep(0.3)
    raise AssertionError(f"{state} never started")
