"""The emulator's ``BatchWriteItem`` of plain puts in front of moto's WSGI application
(``moto_fast_write``) answers what moto answers for the same request (status, headers, body
bytes; only the random request id differs) and leaves the table holding the same items as
moto's own path would; what it leaves to moto (a number, a delete, a duplicate key, an
unknown table, a range key table, a too-long key, extra parameters, an empty value) gets
moto's own answer or error. The stack's moto server uses it: a plain batch through it never
reaches moto's handler, and the durable stack's journal still records it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto.dynamodb.responses import DynamoHandler

from aws_endpoint import DYNAMODB_AUTH, call_wsgi, create_table, dynamodb_environ, moto_endpoint
from streamflow_local import moto_fast_write

AUTH = DYNAMODB_AUTH
TABLE, RANGE_TABLE = "unit-fast-write", "unit-fast-write-range"


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint() as url:
        create_table(url, TABLE, "user_id")
        create_table(url, RANGE_TABLE, "user_id", range_key="month")
        yield boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")


def _environ(body: bytes, auth: str = AUTH, target: str = moto_fast_write.TARGET) -> dict[str, Any]:
    return dynamodb_environ(body, target, auth)




def _table(name: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"].tables[name]


def _contents(name: str) -> dict[Any, Any]:
    """Every item of a table as what reads see and what it is made of (types included)."""
    table = _table(name)
    rows = {}
    for key, value in table.items.items():
        items = value.values() if table.range_key_attr else [value]
        for item in items:
            rows[(key, item.range_key)] = (item.to_json(), type(item), type(item.attrs), item.hash_key, item.range_key,
                                           sorted(item.__dict__), {k: (type(v), v.type, v.value) for k, v in item.attrs.items()})
    return rows


def _refuse(self: Any) -> Any:
    raise AssertionError("moto's batch_write_item was called")


def _both(request: Any, table: str, fast: bool) -> tuple[tuple, tuple, dict, dict]:
    """(answer through ``moto_fast_write``, moto's own answer, table after the first, table
    after the second), each on the same table emptied first; ``fast``: whether moto's
    ``batch_write_item`` handler must not run for the first."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_app = DomainDispatcherApplication(create_backend_app)
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    results = []
    for app, refuse in ((moto_fast_write.wrap(moto_app), fast), (moto_app, False)):
        _table(table).items.clear()
        with pytest.MonkeyPatch.context() as patch:
            if refuse:
                patch.setattr(DynamoHandler, "batch_write_item", _refuse)
            answer = call_wsgi(app, _environ(body))
        results.append((answer, _contents(table)))
    (fast_answer, fast_rows), (moto_answer, moto_rows) = results
    return fast_answer, moto_answer, fast_rows, moto_rows


def _puts(table: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"RequestItems": {table: [{"PutRequest": {"Item": item}} for item in items]}}


def _item(i: int, **more: Any) -> dict[str, Any]:
    return {"user_id": {"S": f"u{i:03d}"}, "month": {"S": "month_001"},
            "features": {"S": json.dumps({"note": "naïve café ✓", "n": i})}, **more}


ANSWERED_HERE = {
    "one item": _puts(TABLE, _item(1)),
    "25 items, non-ASCII text": _puts(TABLE, *[_item(i) for i in range(25)]),
    "key only": _puts(TABLE, {"user_id": {"S": "only"}}),
}
LEFT_TO_MOTO = {
    "a number": _puts(TABLE, _item(1, fee={"N": "1.5"})),
    "a delete": {"RequestItems": {TABLE: [{"DeleteRequest": {"Key": {"user_id": {"S": "u001"}}}}]}},
    "duplicate keys": _puts(TABLE, _item(1), _item(1)),
    "unknown table": _puts("no-such-table", _item(1)),
    "range key table": _puts(RANGE_TABLE, _item(1)),
    "key too long": _puts(TABLE, {"user_id": {"S": "x" * 2049}}),
    "key missing": _puts(TABLE, {"month": {"S": "month_001"}}),
    "empty key": _puts(TABLE, {"user_id": {"S": ""}}),
    "empty non-key string": _puts(TABLE, _item(1, note={"S": ""})),
    "consumed capacity asked": {**_puts(TABLE, _item(1)), "ReturnConsumedCapacity": "TOTAL"},
    "no requests": {"RequestItems": {TABLE: []}},
    "two tables": {"RequestItems": {TABLE: [{"PutRequest": {"Item": _item(1)}}],
                                    RANGE_TABLE: [{"PutRequest": {"Item": _item(2)}}]}},
}


@pytest.mark.parametrize("case", ANSWERED_HERE)
def test_a_plain_batch_of_puts_is_applied_and_answered_as_moto_does_it(endpoint, case):
    fast, reference, fast_rows, moto_rows = _both(ANSWERED_HERE[case], TABLE, fast=True)
    assert fast == reference and fast[0] == "200 OK"
    assert fast_rows == moto_rows
    assert len(fast_rows) == len(ANSWERED_HERE[case]["RequestItems"][TABLE])


@pytest.mark.parametrize("case", LEFT_TO_MOTO)
def test_what_it_leaves_to_moto_gets_motos_answer_or_error(endpoint, case):
    table = RANGE_TABLE if case == "range key table" else TABLE
    fast, reference, fast_rows, moto_rows = _both(LEFT_TO_MOTO[case], table, fast=False)
    assert fast == reference and fast_rows == moto_rows
    if case in ("a number", "empty non-key string", "consumed capacity asked", "two tables", "range key table"):
        assert fast[0] == "200 OK" and fast_rows
    elif case in ("no requests", "a delete"):  # deleting a missing key is no error
        assert fast[0] == "200 OK" and not fast_rows
    else:
        assert not fast[0].startswith("200"), case


def test_an_item_written_here_is_read_updated_and_replaced_by_moto(endpoint):
    client = endpoint
    client.batch_write_item(RequestItems=_puts(TABLE, _item(7))["RequestItems"])
    assert client.get_item(TableName=TABLE, Key={"user_id": {"S": "u007"}})["Item"] == _item(7)
    client.update_item(TableName=TABLE, Key={"user_id": {"S": "u007"}}, UpdateExpression="SET fee = :f",
                       ExpressionAttributeValues={":f": {"N": "99"}})
    assert client.get_item(TableName=TABLE, Key={"user_id": {"S": "u007"}})["Item"]["fee"] == {"N": "99"}
    client.batch_write_item(RequestItems=_puts(TABLE, _item(7, month={"S": "month_002"}))["RequestItems"])
    item = client.get_item(TableName=TABLE, Key={"user_id": {"S": "u007"}})["Item"]
    assert item["month"] == {"S": "month_002"} and "fee" not in item  # a put replaces the whole item
    assert client.scan(TableName=TABLE, ScanFilter={"user_id": {"AttributeValueList": [{"S": "u007"}],
                                                                "ComparisonOperator": "EQ"}})["Count"] == 1


def test_the_stack_s_moto_server_writes_plain_batches_without_moto_s_handler(endpoint, monkeypatch):
    monkeypatch.setattr(DynamoHandler, "batch_write_item", _refuse)
    answer = endpoint.batch_write_item(RequestItems=_puts(TABLE, _item(40), _item(41))["RequestItems"])
    assert answer["UnprocessedItems"] == {}
    assert endpoint.get_item(TableName=TABLE, Key={"user_id": {"S": "u041"}})["Item"] == _item(41)


def test_a_journaled_fast_write_comes_back_after_a_restart(tmp_path):
    """The persistence layer journals the request (it sits outside), and a restore replays
    it through moto's own path to the same items."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from streamflow_local import moto_patches, persistence

    moto_patches.install()
    with moto_endpoint() as url:
        create_table(url, TABLE, "user_id")
        store = persistence.Store(tmp_path)
        store.start_journals()
        app = store.track_writes(moto_fast_write.wrap(DomainDispatcherApplication(create_backend_app)))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(DynamoHandler, "batch_write_item", _refuse)
            assert call_wsgi(app, _environ(json.dumps(_puts(TABLE, *[_item(i) for i in range(5)])).encode()))[0] == "200 OK"
        written = _contents(TABLE)
        store.journals["dynamodb"].close()
        assert len(written) == 5
        _table(TABLE).items.clear()
        assert persistence.Store(tmp_path).restore() == {"dynamodb journal": 1}
        assert _contents(TABLE) == written
