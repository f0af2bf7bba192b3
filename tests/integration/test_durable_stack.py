"""A durable local stack: down + up, kill -9 + up, an interrupted execution, snapshots.

This module restarts, kills and resets its stack, so it runs its OWN stack (own state
folder, own ports), never the session stack the other modules share. What must survive
is looked at from outside, as a user would: Production in the registry, a /predict
answer, the data bucket's object versions, an online feature item, the executions, the
API key.
"""

from __future__ import annotations

import json
import os
import signal
import tarfile
import time
from pathlib import Path

import pytest
import requests

from streamflow_local import cli
from streamflow_local.config import StackConfig
from streamflow_local.deploy import deploy
from streamflow_local.stack_client import (api_headers, data_bucket, first_user, seed, stack_description, upload_month,
                                   wait_for_execution)
from streamflow_local.persistence import CHECKPOINT_SECONDS
from streamflow_local.stack import deployed, down, running_pid, up

from clients import DUPLICATE_UPLOAD, alias, aws, wait_for_ingest_log
from external import EXTERNAL

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(EXTERNAL, reason="restarts and kills a local stack of its own")]

USERS = 2000
# The documented bound: a write acknowledged longer ago than one checkpoint interval plus
# one checkpoint is on disk. Waiting several intervals before a kill respects it.
SETTLE = max(2.0, 6 * CHECKPOINT_SECONDS)


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    config = StackConfig.on_spare_ports(state_dir=tmp_path_factory.mktemp("durable"), stack_name="sfdurable")
    saved = {k: os.environ.get(k) for k in ("STREAMFLOW_PERSIST",)}
    os.environ.pop("STREAMFLOW_PERSIST", None)  # the default: durable
    try:
        with deployed(config):
            yield config
    finally:
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value


@pytest.fixture(scope="module")
def folders(own) -> list[Path]:
    return seed(own.state_dir / "data", months=2, n_users=USERS)


@pytest.fixture
def streamflow(own, monkeypatch, capsys):
    """`streamflow …` against this module's stack: (exit code, stdout, stderr)."""
    for key, value in (("STREAMFLOW_AWS_PORT", own.aws_port), ("STREAMFLOW_MLFLOW_PORT", own.mlflow_port),
                       ("STREAMFLOW_API_PORT", own.api_port), ("STREAMFLOW_STATE_DIR", own.state_dir),
                       ("STREAMFLOW_STACK_NAME", own.stack_name)):
        monkeypatch.setenv(key, str(value))

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def observe(config: StackConfig, user_id: str) -> dict:
    """Everything a user sees of the stack's state, as plain data."""
    s3, dynamodb, sfn = aws(config, "s3"), aws(config, "dynamodb"), aws(config, "stepfunctions")
    description = stack_description(config)
    bucket = data_bucket(config)
    versions = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions += [("v", v["Key"], v["VersionId"], v["ETag"], v["Size"], v["IsLatest"]) for v in page.get("Versions", [])]
        versions += [("d", m["Key"], m["VersionId"], m["IsLatest"]) for m in page.get("DeleteMarkers", [])]
    table = description["outputs"]["FeatureTableName"]
    key_schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    hash_key = next(k["AttributeName"] for k in key_schema if k["KeyType"] == "HASH")
    item = dynamodb.get_item(TableName=table, Key={hash_key: {"S": user_id}}).get("Item")
    machine = description["outputs"]["StateMachineArn"]
    executions = sorted((e["name"], e["status"]) for e in sfn.list_executions(stateMachineArn=machine)["executions"])
    history = {name: len(sfn.get_execution_history(
        executionArn=machine.replace(":stateMachine:", ":execution:") + f":{name}", maxResults=1000)["events"])
        for name, _ in executions}
    response = requests.post(f"{config.api_url}/predict", json={"user_id": user_id}, headers=api_headers(config),
                             timeout=120)
    api_env = aws(config, "lambda").get_function_configuration(
        FunctionName=description["api"]["function"])["Environment"]["Variables"]
    return {
        "production": alias(config, "Production"),
        "predict": (response.status_code, response.json()),
        "versions": sorted(versions),
        "online_item": item,
        "executions": executions,
        "history_events": history,
        "api_key": description["api"].get("api_key"),
        "api_env": api_env,
    }


def _settle() -> None:
    time.sleep(SETTLE)


def _kill_process_group(config: StackConfig) -> None:
    pid = running_pid(config)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while running_pid(config) is not None and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.fixture(scope="module")
def baseline(own, folders) -> dict:
    upload = upload_month(own, folders[0])
    assert wait_for_execution(own, upload.execution_arn, timeout=900)["status"] == "SUCCEEDED"
    # Overwrite an object in the versioned bucket, so there is more than one version to keep.
    s3 = aws(own, "s3")
    s3.put_object(Bucket=data_bucket(own), Key="scratch/note.txt", Body=b"first")
    s3.put_object(Bucket=data_bucket(own), Key="scratch/note.txt", Body=b"second")
    s3.delete_object(Bucket=data_bucket(own), Key="scratch/note.txt")
    seen = observe(own, first_user(folders[0]))
    assert seen["production"] is not None
    assert seen["predict"][0] == 200
    assert seen["online_item"] is not None
    assert sum(1 for v in seen["versions"] if v[1] == "scratch/note.txt") == 3  # two versions + a delete marker
    return seen


def test_down_and_up_keep_everything(own, folders, baseline):
    assert down(own)
    up(own)
    assert observe(own, first_user(folders[0])) == baseline


def test_down_and_up_with_deploy_keep_everything(own, folders, baseline):
    assert down(own)
    up(own)
    deploy(own)
    assert observe(own, first_user(folders[0])) == baseline


def test_kill_9_of_the_process_group_then_up_keeps_everything(own, folders, baseline):
    _settle()
    _kill_process_group(own)
    up(own)
    assert observe(own, first_user(folders[0])) == baseline


def test_an_acknowledged_put_survives_a_kill_after_the_interval(own):
    s3 = aws(own, "s3")
    put = s3.put_object(Bucket=data_bucket(own), Key="scratch/acknowledged.txt", Body=b"kept")
    _settle()
    _kill_process_group(own)
    up(own)
    got = s3.get_object(Bucket=data_bucket(own), Key="scratch/acknowledged.txt")
    assert (got["Body"].read(), got["VersionId"]) == (b"kept", put["VersionId"])


def test_an_execution_killed_mid_run_is_interrupted_and_resumed_once(own, folders, streamflow):
    upload = upload_month(own, folders[1])
    sfn = aws(own, "stepfunctions")
    deadline = time.monotonic() + 300
    while True:  # kill it once it is past its first step
        history = sfn.get_execution_history(executionArn=upload.execution_arn, maxResults=1000)["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
        if len(entered) >= 2:
            break
        assert time.monotonic() < deadline, "the execution never got past its first step"
        time.sleep(0.2)
    _settle()
    _kill_process_group(own)
    up(own)

    code, out, _ = streamflow("status", "month_001")
    assert code == 1
    assert "interrupted" in out and "streamflow resume month_001" in out
    rows = json.loads(streamflow("status", "month_001", "--json")[1])
    assert [r["interrupted"] for r in rows] == [True]
    assert sfn.describe_execution(executionArn=upload.execution_arn)["status"] == "ABORTED"

    code, out, err = streamflow("resume", "month_001")
    assert code == 0, out + err
    assert f"resuming it as {upload.execution_name}_resume1" in out and "execution SUCCEEDED" in out

    # One decision: one finished execution of the month, one [SUMMARY] for it.
    rows = json.loads(streamflow("status", "month_001", "--json")[1])
    assert [(r["status"], r["interrupted"]) for r in rows] == [("ABORTED", True), ("SUCCEEDED", False)]
    assert streamflow("status", "month_001")[0] == 0
    code, out, _ = streamflow("logs", "--grep")
    assert sum(1 for line in out.splitlines() if line.startswith("[SUMMARY] month=month_001")) == 1
    # Nothing left to resume; uploading the same month again starts nothing (ingest's
    # idempotency): its content succeeded, in the resumption (not a failed run to run again)
    code, _, err = streamflow("resume", "month_001")
    assert code == 1 and "not interrupted" in err
    duplicates = len(wait_for_ingest_log(own, "month_001", DUPLICATE_UPLOAD, count=0))
    again = upload_month(own, folders[1])
    assert again.execution_name == upload.execution_name + "_resume1"
    # Ingest logs the upload once Step Functions answered: only then is absence a result
    wait_for_ingest_log(own, "month_001", DUPLICATE_UPLOAD, count=duplicates + 1)
    machine = stack_description(own)["outputs"]["StateMachineArn"]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]
             if e["name"].startswith("month_001-")]
    assert sorted(names) == sorted([upload.execution_name, upload.execution_name + "_resume1"])


def test_snapshot_save_reset_load_gives_back_the_same_state(own, folders, streamflow, tmp_path):
    _settle()
    before = observe(own, first_user(folders[1]))
    snapshot = tmp_path / "state.tar.gz"
    code, out, err = streamflow("snapshot", "save", str(snapshot))
    assert code == 0, out + err
    with tarfile.open(snapshot) as archive:
        manifest = json.load(archive.extractfile(archive.next()))
    assert manifest["format"] == "streamflow-snapshot" and manifest["format_version"] == 1
    assert {item["path"].split("/")[0] for item in manifest["contents"]} >= {"aws", "mlflow.db", "stack.json"}

    code, out, _ = streamflow("reset")
    assert code == 0 and "removed" in out and str(own.state_dir / "aws") in out
    assert not (own.state_dir / "aws").exists() and not (own.state_dir / "mlflow.db").exists()
    assert running_pid(own) is None

    code, out, err = streamflow("snapshot", "load", str(snapshot))
    assert code == 0, out + err
    up(own)
    assert observe(own, first_user(folders[1])) == before

    code, _, err = streamflow("snapshot", "load", str(snapshot))  # into the running stack
    assert code == 2 and "is running: stop it first" in err


def _state_fingerprint(config: StackConfig) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(config.state_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for entry in ("aws", "mlflow.db", "stack.json")
            for p in ([config.state_dir / entry] if (config.state_dir / entry).is_file()
                      else (config.state_dir / entry).rglob("*")) if p.is_file()}


def test_a_corrupt_or_foreign_snapshot_is_refused_and_changes_nothing(own, streamflow, tmp_path):
    down(own)
    good = tmp_path / "good.tar"
    assert streamflow("snapshot", "save", str(good))[0] == 0
    before = _state_fingerprint(own)

    corrupt = tmp_path / "corrupt.tar"
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    corrupt.write_bytes(bytes(data))
    foreign = tmp_path / "foreign.tar"
    note = tmp_path / "note.txt"
    note.write_text("not a snapshot")
    with tarfile.open(foreign, "w") as archive:
        archive.add(note, arcname="note.txt")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(os.urandom(4096))

    for path, says in ((corrupt, "corrupt"), (foreign, "not a StreamFlow snapshot"), (garbage, "not a readable snapshot")):
        code, out, err = streamflow("snapshot", "load", str(path))
        assert code == 1, (path, out, err)
        assert err.startswith("error: ") and says in err, err
        assert _state_fingerprint(own) == before
    up(own)
