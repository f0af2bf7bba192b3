"""Durable emulator state (persistence.py): what counts as a write, the checkpoint lock, and
checkpoints of real moto state restored in a fresh process (S3 versions with their bodies,
DynamoDB items, a running Step Functions execution that comes back interrupted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import boto3
import pytest

from streamflow_local.config import free_port
import requests

from streamflow_local import persistence
from streamflow_local.moto_server import MotoServer
from streamflow_local.persistence import SharedExclusive, Store, is_write, request_service

SIGNED = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=x"


@pytest.mark.parametrize("environ, service, write", [
    ({"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": SIGNED.format("s3")}, "s3", False),
    ({"REQUEST_METHOD": "HEAD", "HTTP_AUTHORIZATION": SIGNED.format("s3")}, "s3", False),
    ({"REQUEST_METHOD": "PUT", "HTTP_AUTHORIZATION": SIGNED.format("s3")}, "s3", True),
    ({"REQUEST_METHOD": "DELETE", "HTTP_AUTHORIZATION": SIGNED.format("s3")}, "s3", True),
    ({"REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": SIGNED.format("dynamodb"),
      "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"}, "dynamodb", False),
    ({"REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": SIGNED.format("dynamodb"),
      "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.BatchWriteItem"}, "dynamodb", True),
    ({"REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": SIGNED.format("states"),
      "HTTP_X_AMZ_TARGET": "AWSStepFunctions.StartExecution"}, "stepfunctions", True),
    ({"REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": SIGNED.format("states"),
      "HTTP_X_AMZ_TARGET": "AWSStepFunctions.GetExecutionHistory"}, "stepfunctions", False),
    ({"REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": SIGNED.format("lambda"),
      "PATH_INFO": "/2015-03-31/functions/api/invocations"}, "lambda", False),
    ({"REQUEST_METHOD": "PUT", "HTTP_AUTHORIZATION": SIGNED.format("lambda"),
      "PATH_INFO": "/2015-03-31/functions/api/configuration"}, "lambda", True),
    ({"REQUEST_METHOD": "GET", "QUERY_STRING": "X-Amz-Credential=testing%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"},
     "s3", False),
    ({"REQUEST_METHOD": "POST", "PATH_INFO": "/moto-api/reset"}, persistence.ALL, True),
])
def test_requests_are_told_apart_by_service_and_whether_they_write(environ, service, write):
    assert request_service(environ) == service
    assert is_write(environ) is write


def test_a_checkpoint_waits_for_writes_in_flight_and_nested_writes_do_not_wait_for_it():
    lock = SharedExclusive()
    lock.acquire_shared()
    assert not lock.acquire_exclusive(timeout=0.1)  # a write is in flight
    acquired: list[bool] = []
    waiter = threading.Thread(target=lambda: acquired.append(lock.acquire_exclusive(timeout=5)))
    waiter.start()
    time.sleep(0.1)
    lock.acquire_shared()  # a nested write while a checkpoint waits: no deadlock
    lock.release_shared()
    lock.release_shared()
    waiter.join()
    assert acquired == [True]
    lock.release_exclusive()


RESTORE_AND_READ = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import boto3
    from streamflow_local import moto_patches, persistence
    from streamflow_local.moto_server import MotoServer
    moto_patches.install()
    store = persistence.Store(Path(sys.argv[1]))
    store.restore()
    store.start_journals()
    server = MotoServer("127.0.0.1", int(sys.argv[2]), wrap=store.track_writes)
    server.start()
    endpoint = f"http://127.0.0.1:{sys.argv[2]}"
    import requests
    requests.post(f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
    def client(service):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    s3, dynamodb, sfn = client("s3"), client("dynamodb"), client("stepfunctions")
    try:  # a deploy re-creates its buckets: that must not replace the restored one
        s3.create_bucket(Bucket="durable")
    except s3.exceptions.ClientError:
        pass
    listing = s3.list_object_versions(Bucket="durable")
    out = {
        "versions": sorted([v["Key"], v["VersionId"], v["ETag"], v["IsLatest"]] for v in listing.get("Versions", [])),
        "markers": sorted([m["Key"], m["VersionId"]] for m in listing.get("DeleteMarkers", [])),
        "bodies": {v["VersionId"]: s3.get_object(Bucket="durable", Key=v["Key"], VersionId=v["VersionId"])["Body"].read().hex()
                   for v in listing.get("Versions", [])},
        "item": dynamodb.get_item(TableName="features", Key={"user_id": {"S": "u1"}}).get("Item"),
        "item2": dynamodb.get_item(TableName="features", Key={"user_id": {"S": "u2"}}).get("Item"),
    }
    machines = sfn.list_state_machines()["stateMachines"]
    if machines:
        arn = sfn.list_executions(stateMachineArn=machines[0]["stateMachineArn"])["executions"][0]["executionArn"]
        described = sfn.describe_execution(executionArn=arn)
        events = sfn.get_execution_history(executionArn=arn)["events"]
        out["execution"] = {"status": described["status"], "error": described.get("error"),
                            "cause": described.get("cause"), "last_event": events[-1]["type"],
                            "first_event": events[0]["type"],
                            "map_runs": sfn.list_map_runs(executionArn=arn)["mapRuns"]}
    print(json.dumps(out))
    server.stop()
""")


def _restore_elsewhere(folder: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", RESTORE_AND_READ, str(folder), str(free_port())],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _features_table(dynamodb) -> None:
    """The online table's shape: a string hash key ``user_id``, on demand."""
    dynamodb.create_table(TableName="features", KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")


@pytest.fixture
def durable_moto(tmp_path):
    from moto.core.base_backend import BackendDict

    from streamflow_local import moto_patches

    BackendDict.reset()  # moto's state is per process: start from nothing other tests left
    moto_patches.install()
    store = Store(tmp_path / "aws")
    store.start_journals()
    port = free_port()
    server = MotoServer("127.0.0.1", port, wrap=store.track_writes)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"

    def client(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    yield store, client, endpoint
    server.stop()


def test_a_checkpoint_keeps_s3_versions_and_bodies_and_dynamodb_items(durable_moto):
    store, client, _ = durable_moto
    s3, dynamodb = client("s3"), client("dynamodb")
    s3.create_bucket(Bucket="durable")
    s3.put_bucket_versioning(Bucket="durable", VersioningConfiguration={"Status": "Enabled"})
    big = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket="durable", Key="a.bin", Body=big)
    s3.put_object(Bucket="durable", Key="a.bin", Body=b"second")
    s3.put_object(Bucket="durable", Key="gone.txt", Body=b"x")
    s3.delete_object(Bucket="durable", Key="gone.txt")
    _features_table(dynamodb)
    dynamodb.put_item(TableName="features", Item={"user_id": {"S": "u1"}, "score": {"N": "0.25"}})

    first = store.checkpoint()
    assert first is not None and any("s3" in key for key in first["bytes"])
    assert store.checkpoint() is None  # nothing changed since
    blobs = sorted(p.name for p in store.blob_dir.iterdir())
    assert len(blobs) == 3  # one file per object version; a delete marker has no body
    assert sorted(p.stat().st_size for p in store.blob_dir.iterdir()) == [1, 6, len(big)]

    restored = _restore_elsewhere(store.folder)
    listing = s3.list_object_versions(Bucket="durable")
    assert restored["versions"] == sorted([v["Key"], v["VersionId"], v["ETag"], v["IsLatest"]]
                                          for v in listing["Versions"])
    assert restored["markers"] == sorted([m["Key"], m["VersionId"]] for m in listing["DeleteMarkers"])
    assert big.hex() in restored["bodies"].values() and b"second".hex() in restored["bodies"].values()
    assert restored["item"] == {"user_id": {"S": "u1"}, "score": {"N": "0.25"}}

    # An object deleted for good (its version and the delete marker, which links to it):
    # the next checkpoint drops its body file too.
    for entry in listing["Versions"] + listing["DeleteMarkers"]:
        if entry["Key"] == "gone.txt":
            s3.delete_object(Bucket="durable", Key="gone.txt", VersionId=entry["VersionId"])
    assert store.checkpoint() is not None
    assert len(list(store.blob_dir.iterdir())) == 2


def test_a_running_execution_comes_back_interrupted_with_its_history(durable_moto):
    store, client, endpoint = durable_moto
    client("s3").create_bucket(Bucket="durable")
    _features_table(client("dynamodb"))
    requests.post(f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                  timeout=10).raise_for_status()
    sfn = client("stepfunctions")
    definition = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 300, "End": True}}}
    machine = sfn.create_state_machine(name="slow", definition=json.dumps(definition),
                                       roleArn="arn:aws:iam::123456789012:role/x")["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="month_003-abc",
                              input=json.dumps({"month": "month_003"}))["executionArn"]
    deadline = time.monotonic() + 30
    while not any(e["type"] == "WaitStateEntered" for e in sfn.get_execution_history(executionArn=arn)["events"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert store.checkpoint() is not None

    restored = _restore_elsewhere(store.folder)["execution"]
    assert restored["status"] == "ABORTED" and restored["error"] == persistence.INTERRUPTED_ERROR
    assert "streamflow resume month_003" in restored["cause"]
    assert (restored["first_event"], restored["last_event"]) == ("ExecutionStarted", "ExecutionAborted")
    assert restored["map_runs"] == []  # its interpreter (and any map run in it) is gone: none, not an error
    sfn.stop_execution(executionArn=arn)


def test_an_execution_that_ends_between_checkpoints_is_saved_ended(durable_moto):
    store, client, endpoint = durable_moto
    client("s3").create_bucket(Bucket="durable")
    _features_table(client("dynamodb"))
    requests.post(f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                  timeout=10).raise_for_status()
    sfn = client("stepfunctions")
    definition = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 1, "End": True}}}
    machine = sfn.create_state_machine(name="quick", definition=json.dumps(definition),
                                       roleArn="arn:aws:iam::123456789012:role/x")["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="month_004-abc")["executionArn"]
    assert store.checkpoint() is not None  # while it runs
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert store.checkpoint() is not None  # no request changed anything, but the execution ended
    restored = _restore_elsewhere(store.folder)["execution"]
    assert restored["status"] == "SUCCEEDED" and restored["last_event"] == "ExecutionSucceeded"


def test_dynamodb_writes_are_journaled_at_once_and_folded_into_a_pickle(durable_moto):
    store, client, _ = durable_moto
    client("s3").create_bucket(Bucket="durable")
    dynamodb = client("dynamodb")
    _features_table(dynamodb)
    dynamodb.put_item(TableName="features", Item={"user_id": {"S": "u1"}, "n": {"N": "1"}})
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):  # refused: not journaled
        dynamodb.put_item(TableName="features", Item={"user_id": {"S": "u1"}, "n": {"N": "9"}},
                          ConditionExpression="attribute_not_exists(user_id)")
    # No checkpoint at all: the acknowledged writes are in the journal already.
    assert _restore_elsewhere(store.folder)["item"] == {"user_id": {"S": "u1"}, "n": {"N": "1"}}

    assert store.checkpoint(force=True) is not None  # the table pickled, a new journal begun
    journals = sorted(p.name for p in store.folder.glob("dynamodb-journal-*.jsonl"))
    assert len(journals) == 1 and (store.folder / journals[0]).stat().st_size == 0
    dynamodb.update_item(TableName="features", Key={"user_id": {"S": "u1"}}, UpdateExpression="SET n = n + :one",
                         ExpressionAttributeValues={":one": {"N": "1"}})
    dynamodb.put_item(TableName="features", Item={"user_id": {"S": "u2"}, "n": {"N": "2"}})
    restored = _restore_elsewhere(store.folder)
    assert restored["item"] == {"user_id": {"S": "u1"}, "n": {"N": "2"}}
    assert restored["item2"] == {"user_id": {"S": "u2"}, "n": {"N": "2"}}


def test_a_table_is_pickled_by_a_forked_copy_and_a_failed_copy_loses_nothing(durable_moto, monkeypatch):
    """The DynamoDB pickle is written by a forked process (the stack answers meanwhile); if
    that process fails, the index keeps the last good pickle and every journal since, so a
    restore still has each acknowledged write."""
    store, client, _ = durable_moto
    assert persistence.forked_compaction()
    dynamodb = client("dynamodb")
    _features_table(dynamodb)
    dynamodb.put_item(TableName="features", Item={"user_id": {"S": "u1"}, "n": {"N": "1"}})
    parent, write = os.getpid(), Store._write_service

    def failing(self, key, bd, generation, name=None):
        if "dynamodb" not in key:
            return write(self, key, bd, generation, name)
        assert os.getpid() != parent, "the table was pickled in the stack's own process"
        return None

    monkeypatch.setattr(Store, "_write_service", failing)
    assert store.checkpoint(force=True) is None or "moto.dynamodb.models:DynamoDBBackend" not in \
        store.read_index()["services"]  # the child failed: no DynamoDB pickle committed
    dynamodb.put_item(TableName="features", Item={"user_id": {"S": "u2"}, "n": {"N": "2"}})
    restored = _restore_elsewhere(store.folder)
    assert restored["item"] == {"user_id": {"S": "u1"}, "n": {"N": "1"}}
    assert restored["item2"] == {"user_id": {"S": "u2"}, "n": {"N": "2"}}

    monkeypatch.undo()
    written = store.checkpoint(force=True)
    entry = store.read_index()["services"]["moto.dynamodb.models:DynamoDBBackend"]
    assert written and written["bytes"]["moto.dynamodb.models:DynamoDBBackend"] == entry["bytes"] > 0
    assert len(list(store.folder.glob("dynamodb-journal-*.jsonl"))) == 1  # folded in: the older ones deleted
    restored = _restore_elsewhere(store.folder)
    assert restored["item2"] == {"user_id": {"S": "u2"}, "n": {"N": "2"}}


def test_other_services_are_checkpointed_while_a_forked_copy_pickles_a_table(durable_moto, monkeypatch, tmp_path):
    """A big table's pickle takes minutes in its forked copy; meanwhile an S3 upload must
    reach a checkpoint (the checkpoint round does not wait for the copy), the copy's pickle
    must survive the garbage collection of those rounds, and a later round commits it."""
    store, client, _ = durable_moto
    client("s3").create_bucket(Bucket="durable")
    dynamodb = client("dynamodb")
    _features_table(dynamodb)
    dynamodb.put_item(TableName="features", Item={"user_id": {"S": "u1"}, "n": {"N": "1"}})
    monkeypatch.setattr(persistence, "COMPACT_BYTES", 0)  # any journal is worth a pickle
    release = tmp_path / "release"
    parent, write = os.getpid(), Store._write_service

    def slow(self, key, bd, generation, name=None):
        if "dynamodb" in key and os.getpid() != parent:
            deadline = time.monotonic() + 60
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return write(self, key, bd, generation, name)

    monkeypatch.setattr(Store, "_write_service", slow)
    dynamo_key = "moto.dynamodb.models:DynamoDBBackend"
    started = time.monotonic()
    store.checkpoint()  # forks the table's pickle, does not wait for it
    assert time.monotonic() - started < 30 and dynamo_key not in store.read_index()["services"]
    client("s3").put_object(Bucket="durable", Key="landed.csv", Body=b"a,b\n1,2\n")
    def wrote_s3(stat):
        return stat is not None and any("s3" in key for key in stat["bytes"])

    while not wrote_s3(store.checkpoint()):  # a round may wait out the S3 checkpoint's spacing
        assert time.monotonic() - started < 30
        time.sleep(0.05)
    assert dynamo_key not in store.read_index()["services"]  # still pickling
    restored = _restore_elsewhere(store.folder)
    assert [v[0] for v in restored["versions"]] == ["landed.csv"]  # the upload is checkpointed meanwhile
    assert restored["item"] == {"user_id": {"S": "u1"}, "n": {"N": "1"}}  # the table's writes: journal

    release.touch()
    written = store.checkpoint(wait=True)
    entry = store.read_index()["services"][dynamo_key]
    assert written and written["bytes"][dynamo_key] == entry["bytes"] > 0
    assert (store.folder / entry["file"]).exists()  # not collected by the rounds in between
    assert _restore_elsewhere(store.folder)["item"] == {"user_id": {"S": "u1"}, "n": {"N": "1"}}
