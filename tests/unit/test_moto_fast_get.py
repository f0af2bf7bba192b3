"""The emulator's ``GetItem`` in front of moto's WSGI application (``moto_fast_get``)
answers what moto answers for the same request on the same data (status, headers, body
bytes; only the random request id differs): found and missing keys, scalar items with
non-ASCII text, and the requests it leaves to moto (a non-scalar item, a projection, a range
key table, an unknown table, a malformed key) get moto's own answers and errors. The stack's
moto server uses it: a plain ``GetItem`` through it never reaches moto's handler."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.dynamodb.responses import DynamoHandler

from aws_endpoint import DYNAMODB_AUTH, call_wsgi, create_table, dynamodb_environ, moto_endpoint
from streamflow_local import moto_fast_get

AUTH = DYNAMODB_AUTH
TABLE, RANGE_TABLE = "unit-fast-get", "unit-fast-get-range"


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint() as url:
        client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        create_table(url, TABLE, "user_id")
        create_table(url, RANGE_TABLE, "user_id", range_key="month")
        for i in range(12):
            item = {"user_id": {"S": f"u{i:03d}"}, "fee": {"N": f"{i}.50"}, "paperless": {"BOOL": i % 2 == 0},
                    "features": {"S": json.dumps({"note": "naïve café ✓", "n": i})}, "gone": {"NULL": True}}
            if i == 3:  # non-scalar attributes: moto's way
                item["tags"] = {"SS": ["a", "b"]}
                item["blob"] = {"B": "aGVsbG8="}
            client.put_item(TableName=TABLE, Item=item)
            client.put_item(TableName=RANGE_TABLE, Item={**item, "month": {"S": "month_000"}})
        yield client


def _environ(body: bytes, target: str = moto_fast_get.TARGET, auth: str = AUTH) -> dict[str, Any]:
    return dynamodb_environ(body, target, auth)




def _refuse(self: Any) -> Any:
    raise AssertionError("moto's get_item was called")


def _both(request: Any, fast: bool, **environ: Any) -> tuple[tuple, tuple]:
    """(answer through ``moto_fast_get``, moto's own answer) in-process, same backend;
    ``fast``: whether moto's ``get_item`` handler must not run for the first."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_app = DomainDispatcherApplication(create_backend_app)
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    with pytest.MonkeyPatch.context() as patch:
        if fast:
            patch.setattr(DynamoHandler, "get_item", _refuse)
        answer = call_wsgi(moto_fast_get.wrap(moto_app), _environ(body, **environ))
    return answer, call_wsgi(moto_app, _environ(body, **environ))


ANSWERED_HERE = {
    "found": {"TableName": TABLE, "Key": {"user_id": {"S": "u001"}}},
    "found, consistent read": {"TableName": TABLE, "Key": {"user_id": {"S": "u002"}}, "ConsistentRead": True},
    "missing": {"TableName": TABLE, "Key": {"user_id": {"S": "nobody"}}},
}
LEFT_TO_MOTO = {
    "non-scalar item": {"TableName": TABLE, "Key": {"user_id": {"S": "u003"}}},
    "projection": {"TableName": TABLE, "Key": {"user_id": {"S": "u001"}}, "ProjectionExpression": "fee"},
    "range key table": {"TableName": RANGE_TABLE, "Key": {"user_id": {"S": "u001"}, "month": {"S": "month_000"}}},
    "range key missing": {"TableName": RANGE_TABLE, "Key": {"user_id": {"S": "u001"}}},
    "unknown table": {"TableName": "no-such-table", "Key": {"user_id": {"S": "u001"}}},
    "empty key value": {"TableName": TABLE, "Key": {"user_id": {"S": ""}}},
    "wrong key name": {"TableName": TABLE, "Key": {"id": {"S": "u001"}}},
    "wrong key type": {"TableName": TABLE, "Key": {"user_id": {"N": "1"}}},  # moto: 200 and no item
    "bad consistent read": {"TableName": TABLE, "Key": {"user_id": {"S": "u001"}}, "ConsistentRead": "yes"},
}


@pytest.mark.parametrize("case", ANSWERED_HERE)
def test_a_plain_get_item_is_answered_as_moto_answers_it(endpoint, case):
    fast, reference = _both(ANSWERED_HERE[case], fast=True)
    assert fast == reference
    assert fast[0] == "200 OK"
    if case != "missing":
        item = json.loads(fast[2])["Item"]
        assert item["fee"] == {"N": f"{int(item['user_id']['S'][1:])}.50"} and item["gone"] == {"NULL": True}


@pytest.mark.parametrize("case", LEFT_TO_MOTO)
def test_what_it_leaves_to_moto_gets_motos_answer_or_error(endpoint, case):
    fast, reference = _both(LEFT_TO_MOTO[case], fast=False)
    assert fast == reference
    if case in ("non-scalar item", "projection", "range key table", "bad consistent read"):
        assert fast[0] == "200 OK" and json.loads(fast[2])["Item"]  # moto takes "yes" as a ConsistentRead
    elif case == "wrong key type":
        assert fast[0] == "200 OK" and json.loads(fast[2]) == {}
    else:
        assert not fast[0].startswith("200"), case


def test_other_operations_and_other_regions_are_moto_s(endpoint):
    scan = {"TableName": TABLE, "Limit": 1}
    fast, reference = _both(scan, fast=False, target="DynamoDB_20120810.Scan")
    assert fast[0] == reference[0] == "200 OK" and json.loads(fast[2])["Count"] == 1
    elsewhere = AUTH.replace("us-east-1", "eu-west-1")  # no such table there: moto's error, same bytes
    fast, reference = _both(ANSWERED_HERE["found"], fast=False, auth=elsewhere)
    assert fast == reference and fast[0].startswith("400")


def test_a_body_that_is_not_json_fails_as_in_moto(endpoint):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_app = DomainDispatcherApplication(create_backend_app)
    for app in (moto_fast_get.wrap(moto_app), moto_app):  # moto raises; waitress answers 500
        with pytest.raises(ValueError):
            call_wsgi(app, _environ(b"{not json"))


def test_the_stack_s_moto_server_answers_plain_get_items_without_moto_s_handler(endpoint, monkeypatch):
    client = endpoint
    before = client.get_item(TableName=TABLE, Key={"user_id": {"S": "u004"}})["Item"]

    monkeypatch.setattr(DynamoHandler, "get_item", _refuse)
    assert client.get_item(TableName=TABLE, Key={"user_id": {"S": "u004"}})["Item"] == before
    assert "Item" not in client.get_item(TableName=TABLE, Key={"user_id": {"S": "nobody"}})
    once = boto3.client("dynamodb", endpoint_url=client.meta.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError, match="500"):  # a projection is moto's: its handler runs (and here refuses)
        once.get_item(TableName=TABLE, Key={"user_id": {"S": "u004"}}, ProjectionExpression="fee")
    monkeypatch.undo()
    client.update_item(TableName=TABLE, Key={"user_id": {"S": "u004"}}, UpdateExpression="SET fee = :f",
                       ExpressionAttributeValues={":f": {"N": "99"}})
    assert client.get_item(TableName=TABLE, Key={"user_id": {"S": "u004"}})["Item"]["fee"] == {"N": "99"}
