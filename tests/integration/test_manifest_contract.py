"""The manifest is a contract, through the real stack (issue 10). Every month here is
uploaded with plain boto3 or raw HTTP, not the project's upload helper.

- a file changed after its manifest was written (same size) is rejected at ingest and
  quarantined; Production and the online table do not move;
- a manifest carrying policy is rejected; with AllowManifestOverrides=true (set on the
  ingest function's environment, restored afterwards) a bad value is rejected cleanly and a
  good one is obeyed;
- the emulator's S3 answers 0-byte and 200 MB PUTs with ``Expect: 100-continue``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

import boto3
import pytest

from streamflow.generator import build_manifest, generate_month, month_csv_bytes
from streamflow.manifest import POLICY_KEYS
from streamflow.schema import MANIFEST_NAME
from streamflow_local.stack_client import data_bucket, state_machine_arn, upload_month, wait_for_execution

from clients import alias, aws, wait_for_rejection

pytestmark = pytest.mark.integration


def _small_month() -> dict[str, bytes]:
    return month_csv_bytes(generate_month(1, n_users=200, seed=11))


def _put_month(stack, month: str, files: dict[str, bytes], manifest: dict | bytes) -> None:
    """CSVs, then the manifest last, with plain boto3 (no checksum asked for)."""
    s3 = aws(stack, "s3")
    bucket = data_bucket(stack)
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"months/{month}/{name}", Body=body)
    body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    s3.put_object(Bucket=bucket, Key=f"months/{month}/{MANIFEST_NAME}", Body=body)


def _executions(stack, month: str) -> list[dict]:
    listed = aws(stack, "stepfunctions").list_executions(stateMachineArn=state_machine_arn(stack))["executions"]
    return [e for e in listed if e["name"].startswith(f"{month}-")]


def _keys(stack, prefix: str) -> list[str]:
    listed = aws(stack, "s3").list_objects_v2(Bucket=data_bucket(stack), Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def _online_item(stack, user_id: str) -> dict | None:
    table = boto3.resource("dynamodb", endpoint_url=stack.aws_endpoint, region_name=stack.region,
                           aws_access_key_id="testing", aws_secret_access_key="testing").Table(
        f"{stack.stack_name}-online-features")
    return table.get_item(Key={"user_id": user_id}).get("Item")


@pytest.fixture(scope="module")
def champion(stack, months) -> str:
    """month_000 has run (earlier modules, or here): a champion and online features exist.
    Returns a user_id whose online features the tests watch."""
    done = [e for e in _executions(stack, "month_000") if e["status"] == "SUCCEEDED"]
    if not done:
        description = wait_for_execution(stack, upload_month(stack, months[0]).execution_arn)
        assert description["status"] == "SUCCEEDED", description.get("cause")
    return (months[0] / "users.csv").read_text().splitlines()[1].split(",", 1)[0]


def test_a_file_changed_after_its_manifest_is_rejected_at_ingest(stack, champion):
    month = "month_130"
    files = _small_month()
    manifest = build_manifest(month, files)
    lines = files["labels.csv"].decode().splitlines()
    true_rows = [i for i, line in enumerate(lines) if line.endswith(",True")][:100]
    false_rows = [i for i, line in enumerate(lines) if line.endswith(",False")][:100]
    for a, b in zip(true_rows, false_rows):  # labels swapped between rows: same size, other bytes
        lines[a], lines[b] = lines[a][:-5] + ",False", lines[b][:-6] + ",True"
    tampered = dict(files, **{"labels.csv": ("\n".join(lines) + "\n").encode()})
    assert len(tampered["labels.csv"]) == len(files["labels.csv"]) and tampered["labels.csv"] != files["labels.csv"]
    production, online_before = alias(stack, "Production"), _online_item(stack, champion)

    _put_month(stack, month, tampered, manifest)
    report_key, report = wait_for_rejection(stack, month)
    assert report["stage"] == "ingest" and report["execution"] is None
    (violation,) = report["violations"]
    assert violation["file"] == "labels.csv" and "sha256 differs" in violation["rule"]
    assert hashlib.sha256(files["labels.csv"]).hexdigest() in violation["example"]
    assert hashlib.sha256(tampered["labels.csv"]).hexdigest() in violation["example"]
    assert _keys(stack, f"months/{month}/") == []
    attempt = report_key.rsplit("/", 1)[0] + "/"
    assert f"{attempt}labels.csv" in _keys(stack, attempt)
    assert _executions(stack, month) == []
    assert alias(stack, "Production") == production
    assert _online_item(stack, champion) == online_before


@pytest.mark.parametrize("key", list(POLICY_KEYS))
def test_a_manifest_carrying_policy_is_rejected(stack, key):
    month = f"month_{131 + list(POLICY_KEYS).index(key)}"
    files = _small_month()
    value = {"threshold": "abc", "delta": -1, "reference_month": "month_000", "require_approval": False,
             "approval_timeout_seconds": 5}[key]
    _put_month(stack, month, files, dict(build_manifest(month, files), **{key: value}))
    report = wait_for_rejection(stack, month)[1]
    assert report["stage"] == "ingest"
    rule = report["violations"][0]["rule"]
    assert f"policy keys {key} are not accepted" in rule and POLICY_KEYS[key] in rule
    assert "template parameters" in rule
    assert _keys(stack, f"months/{month}/") == [] and _executions(stack, month) == []


@pytest.fixture
def overrides_allowed(stack):
    """The stack as deployed with AllowManifestOverrides=true: the ingest function's
    environment changed through the Lambda API (what a redeploy would do), then restored."""
    lam = aws(stack, "lambda")
    name = f"{stack.stack_name}-ingest"
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    assert variables["ALLOW_MANIFEST_OVERRIDES"] == "false"  # the template's default
    lam.update_function_configuration(FunctionName=name,
                                      Environment={"Variables": dict(variables, ALLOW_MANIFEST_OVERRIDES="true")})
    try:
        yield
    finally:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})


def test_with_overrides_allowed_a_bad_value_is_rejected_cleanly(stack, champion, overrides_allowed):
    for month, extra, rule in (("month_136", {"threshold": "abc"}, "valid number"),
                               ("month_137", {"reference_month": "month_555"}, "has not been processed")):
        files = _small_month()
        _put_month(stack, month, files, dict(build_manifest(month, files), **extra))
        report = wait_for_rejection(stack, month)[1]
        assert report["stage"] == "ingest" and rule in report["message"], report
        assert _keys(stack, f"months/{month}/") == [] and _executions(stack, month) == []


def test_with_overrides_allowed_a_good_value_is_obeyed(stack, champion, overrides_allowed):
    month = "month_138"
    files = _small_month()
    _put_month(stack, month, files, dict(build_manifest(month, files), threshold=1.0, reference_month="month_000"))
    deadline = time.monotonic() + 60
    while not _executions(stack, month):
        assert time.monotonic() < deadline, "no execution started"
        time.sleep(0.5)
    arn = _executions(stack, month)[0]["executionArn"]
    description = wait_for_execution(stack, arn)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    execution_input = json.loads(description["input"])
    assert execution_input["threshold"] == 1.0 and execution_input["reference_month"] == "month_000"
    summary = json.loads(description["output"])
    assert summary["retrained"] is False  # drift_share < 1.0 = the manifest's threshold


# --- the emulator's S3 over HTTP -------------------------------------------------------------

AUTH = ("Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0")
BIG = 200 * 1024 * 1024


def _raw_response(sock: socket.socket) -> tuple[list[int], int, bytes]:
    """Read interim 1xx lines and one final response head; (interim codes, status, head)."""
    data, interim = b"", []
    while True:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        if status >= 200:
            return interim, status, head
        interim.append(status)


def _headers_sent(client) -> list[dict]:
    sent: list[dict] = []
    client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers)))
    return sent


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.bin"
    with path.open("wb") as handle:
        for _ in range(BIG // (8 * 1024 * 1024)):
            handle.write(os.urandom(8 * 1024 * 1024))
    return path


def test_zero_byte_put_with_expect_continue(stack):
    s3 = aws(stack, "s3")
    bucket = data_bucket(stack)
    sent = _headers_sent(s3)
    s3.put_object(Bucket=bucket, Key="scratch/empty.csv", Body=b"")
    assert sent[-1].get("Expect") == b"100-continue"
    assert s3.head_object(Bucket=bucket, Key="scratch/empty.csv")["ContentLength"] == 0

    with socket.create_connection(("127.0.0.1", stack.aws_port), timeout=30) as sock:
        sock.sendall(f"PUT /{bucket}/scratch/empty-raw.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n{AUTH}\r\n"
                     "Expect: 100-continue\r\nContent-Length: 0\r\n\r\n".encode())
        interim, status, _ = _raw_response(sock)
    assert status == 200 and interim == [100]  # the 100 asked for, then the answer: no body is awaited
    assert s3.head_object(Bucket=bucket, Key="scratch/empty-raw.csv")["ContentLength"] == 0


def test_200_mb_put_with_expect_continue_round_trips(stack, big_file):
    s3 = aws(stack, "s3")
    bucket = data_bucket(stack)
    digest = hashlib.sha256(big_file.read_bytes()).hexdigest()
    sent = _headers_sent(s3)
    with big_file.open("rb") as handle:  # one PUT of 200 MB, as botocore sends it
        s3.put_object(Bucket=bucket, Key="scratch/big-boto.bin", Body=handle, ChecksumAlgorithm="SHA256")
    assert sent[-1].get("Expect") == b"100-continue" and sent[-1].get("Content-Length") == str(BIG)

    with socket.create_connection(("127.0.0.1", stack.aws_port), timeout=120) as sock:
        sock.sendall(f"PUT /{bucket}/scratch/big-raw.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n{AUTH}\r\n"
                     f"Expect: 100-continue\r\nContent-Length: {BIG}\r\n\r\n".encode())
        sock.settimeout(10)
        assert int(sock.recv(64).split(b" ", 2)[1]) == 100  # asked for the body before it is sent
        sock.settimeout(120)
        with big_file.open("rb") as handle:
            sock.sendfile(handle)
        interim, status, _ = _raw_response(sock)
    assert status == 200

    try:
        for key in ("scratch/big-boto.bin", "scratch/big-raw.bin"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            check = hashlib.sha256()
            for chunk in body.iter_chunks(1024 * 1024):
                check.update(chunk)
            assert check.hexdigest() == digest, key
    finally:  # the bucket is versioned: remove the versions, not only the current keys
        versions = s3.list_object_versions(Bucket=bucket, Prefix="scratch/big-").get("Versions", [])
        for version in versions:
            s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
