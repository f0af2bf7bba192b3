"""The local stack's servers: moto behind waitress (keep-alive, raw S3 keys), the API
gateway's direct hand-off to an execution environment, and log rotation on a new stack."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import boto3
import pytest

from streamflow_local.config import StackConfig, free_port
from streamflow_local.gateway import LocalApiGateway
from streamflow_local.moto_server import MotoServer
from streamflow_local.stack import rotate_logs


@pytest.fixture(scope="module")
def moto_endpoint():
    from streamflow_local import moto_patches

    moto_patches.install()
    port = free_port()
    server = MotoServer("127.0.0.1", port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_moto_keeps_the_connection_open_between_requests(moto_endpoint):
    port = int(moto_endpoint.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0",
               "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
                                "SignedHeaders=host, Signature=x"}
    sockets = []
    for _ in range(3):
        conn.request("POST", "/", body=b"{}", headers=headers)
        response = conn.getresponse()
        assert response.status == 200 and "TableNames" in json.loads(response.read())
        assert (response.getheader("Connection") or "").lower() != "close"
        sockets.append(conn.sock)
    assert sockets[0] is not None and all(s is sockets[0] for s in sockets)  # one TCP connection
    conn.close()


def test_s3_keys_with_encoded_characters_round_trip(moto_endpoint):
    s3 = _client("s3", moto_endpoint)
    s3.create_bucket(Bucket="keys")
    for key in ("months/month_001/users.csv", "odd/a%2Fb c+d.csv", "ümlaut/ä.json"):
        s3.put_object(Bucket="keys", Key=key, Body=key.encode())
        assert s3.get_object(Bucket="keys", Key=key)["Body"].read() == key.encode()
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="keys")["Contents"]) == sorted(
        ["months/month_001/users.csv", "odd/a%2Fb c+d.csv", "ümlaut/ä.json"])


def test_batch_written_items_read_back_the_same_with_the_patched_parser(moto_endpoint):
    dynamodb = _client("dynamodb", moto_endpoint)
    dynamodb.create_table(TableName="items", KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    plain = {"user_id": {"S": "u1"}, "fee": {"N": "70.35"}, "senior": {"BOOL": True}, "none": {"NULL": True},
             "tags": {"SS": ["a", "b"]}, "nested": {"M": {"x": {"L": [{"N": "1"}, {"S": "y"}]}}}}
    binary = {"user_id": {"S": "u2"}, "blob": {"B": b"\x00\x01raw"}, "fee": {"N": "1"}}
    dynamodb.batch_write_item(RequestItems={"items": [{"PutRequest": {"Item": plain}},
                                                      {"PutRequest": {"Item": binary}}]})
    assert dynamodb.get_item(TableName="items", Key={"user_id": {"S": "u1"}})["Item"] == plain
    assert dynamodb.get_item(TableName="items", Key={"user_id": {"S": "u2"}})["Item"] == binary
    with pytest.raises(dynamodb.exceptions.ClientError, match="duplicates"):
        dynamodb.batch_write_item(RequestItems={"items": [{"PutRequest": {"Item": plain}},
                                                          {"PutRequest": {"Item": plain}}]})


def _deployed_gateway(tmp_path: Path, invoke) -> LocalApiGateway:
    config = StackConfig(state_dir=tmp_path, api_port=free_port())
    config.stack_file.write_text(json.dumps({"api": {"function": "churn-api", "api_key_required": False}}))
    return LocalApiGateway(config, invoke=invoke)


def test_gateway_hands_the_proxy_event_to_the_function_and_shapes_its_answer(tmp_path):
    seen = []

    def invoke(function, event):
        seen.append((function, event))
        return json.dumps({"statusCode": 201, "headers": {"content-type": "application/json"},
                           "multiValueHeaders": {"x-many": ["a", "b"]}, "body": '{"ok":true}'}), False

    gateway = _deployed_gateway(tmp_path, invoke)
    status, headers, body = gateway.handle("POST", "/predict?x=1", {"Content-Type": "application/json"}, b'{"u":1}')
    assert (status, json.loads(body)) == (201, {"ok": True})
    assert headers["content-type"] == "application/json" and headers["x-many"] == "a, b"
    function, event = seen[0]
    assert function == "churn-api"
    assert event["httpMethod"] == "POST" and event["path"] == "/predict" and event["body"] == '{"u":1}'


@pytest.mark.parametrize("answer", [
    (json.dumps({"errorMessage": "boom", "errorType": "ValueError"}), True),  # the handler raised
    (json.dumps({"no": "statusCode"}), False),  # not a proxy response
    ("null", False),
])
def test_gateway_answers_502_json_when_the_function_fails(tmp_path, answer):
    gateway = _deployed_gateway(tmp_path, lambda function, event: answer)
    status, headers, body = gateway.handle("GET", "/health", {}, b"")
    assert status == 502 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "bad_gateway"


def test_a_new_stack_moves_the_last_stacks_logs_aside(tmp_path):
    config = StackConfig(state_dir=tmp_path)
    config.logs_dir.mkdir(parents=True)
    (config.logs_dir / "streamflow-api.log").write_text("old run\n")
    (config.logs_dir / "stack.log").write_text("old stack\n")
    rotate_logs(config)
    assert list(config.logs_dir.glob("*.log")) == []
    assert (config.logs_dir / "previous" / "streamflow-api.log").read_text() == "old run\n"
    # the next rotation replaces what the one before kept
    (config.logs_dir / "stack.log").write_text("second stack\n")
    rotate_logs(config)
    assert sorted(p.name for p in (config.logs_dir / "previous").iterdir()) == ["stack.log"]
    assert (config.logs_dir / "previous" / "stack.log").read_text() == "second stack\n"
