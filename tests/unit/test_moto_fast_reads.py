"""The emulator's fast ``BatchGetItem`` (``moto_fast_reads``) answers byte for byte what
moto's own handler answers for the same request on the same data: found and missing keys,
scalar and non-scalar items, non-ASCII text, a range-key table, projections, the 16 MB
answer limit, and the same errors. Raw HTTP against the stack's moto server."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlparse

import boto3
import pytest
from moto.dynamodb.responses import DynamoHandler

from aws_endpoint import create_table, moto_endpoint

AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=x")
HASH_TABLE, RANGE_TABLE, BIG_TABLE = "unit-fast-reads", "unit-fast-reads-range", "unit-fast-reads-big"


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint() as url:
        client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        create_table(url, HASH_TABLE, "user_id")
        create_table(url, BIG_TABLE, "user_id")
        create_table(url, RANGE_TABLE, "user_id", range_key="month")
        for i in range(60):
            item = {"user_id": {"S": f"u{i:03d}"}, "fee": {"N": f"{i}.5"}, "paperless": {"BOOL": i % 2 == 0},
                    "note": {"S": "naïve café ✓" if i % 7 == 0 else "plain"}, "gone": {"NULL": True}}
            if i % 10 == 3:  # non-scalar attributes go moto's way
                item["tags"] = {"SS": ["a", "b"]}
                item["history"] = {"L": [{"N": "1"}, {"M": {"k": {"S": "v"}}}]}
                item["blob"] = {"B": "aGVsbG8="}
            client.put_item(TableName=HASH_TABLE, Item=item)
            client.put_item(TableName=RANGE_TABLE, Item={**item, "month": {"S": f"month_00{i % 3}"}})
        for i in range(50):  # 50 × ≈ 380 KB: more than one 16 MB answer
            client.put_item(TableName=BIG_TABLE, Item={"user_id": {"S": f"big{i:02d}"}, "pad": {"S": "x" * 380_000}})
        yield url


def _post(url: str, body: dict) -> tuple[int, bytes]:
    address = urlparse(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        connection.request("POST", "/", json.dumps(body), {
            "X-Amz-Target": "DynamoDB_20120810.BatchGetItem", "Content-Type": "application/x-amz-json-1.0",
            "Authorization": AUTH})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _both(url: str, body: dict, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    """(fast handler's answer, moto's own handler's answer) to the same request."""
    fast = DynamoHandler.batch_get_item
    assert getattr(fast, "_streamflow_fast", False), "moto_patches.install() did not install the fast path"
    answer = _post(url, body)
    with monkeypatch.context() as patch:
        patch.setattr(DynamoHandler, "batch_get_item", fast._streamflow_original)
        reference = _post(url, body)
    return answer, reference


def _keys(*ids: str, month: bool = False) -> list[dict]:
    return [{"user_id": {"S": i}, **({"month": {"S": f"month_00{int(i[1:]) % 3}"}} if month else {})} for i in ids]


CASES = {
    "scalar items, found and missing": {HASH_TABLE: {"Keys": _keys("u001", "u999", "u002", "u014", "u000")}},
    "non-scalar items": {HASH_TABLE: {"Keys": _keys("u003", "u013", "u004")}},
    "100 keys": {HASH_TABLE: {"Keys": _keys(*[f"u{i:03d}" for i in range(100)])}},
    "range-key table": {RANGE_TABLE: {"Keys": _keys("u001", "u003", "u010", month=True)}},
    "two tables": {HASH_TABLE: {"Keys": _keys("u005")}, RANGE_TABLE: {"Keys": _keys("u005", month=True)}},
    "projection": {HASH_TABLE: {"Keys": _keys("u001", "u003"), "ProjectionExpression": "fee, #n",
                                "ExpressionAttributeNames": {"#n": "note"}}},
    "attributes to get": {HASH_TABLE: {"Keys": _keys("u001"), "AttributesToGet": ["fee"]}},
    "no keys": {HASH_TABLE: {"Keys": []}},
    "over the 16 MB answer": {BIG_TABLE: {"Keys": _keys(*[f"big{i:02d}" for i in range(50)])}},
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_answer_as_moto(endpoint, case, monkeypatch):
    answer, reference = _both(endpoint, {"RequestItems": CASES[case]}, monkeypatch)
    assert answer == reference
    assert answer[0] == 200


def test_the_16_mb_limit_leaves_keys_unprocessed(endpoint, monkeypatch):
    (status, body), _ = _both(endpoint, {"RequestItems": CASES["over the 16 MB answer"]}, monkeypatch)
    document = json.loads(body)
    returned, left = document["Responses"][BIG_TABLE], document["UnprocessedKeys"][BIG_TABLE]["Keys"]
    assert status == 200 and returned and left and len(returned) + len(left) == 50


ERRORS = {
    "over 100 keys in a table": {HASH_TABLE: {"Keys": _keys(*[f"u{i:03d}" for i in range(101)])}},
    "over 100 keys in all": {HASH_TABLE: {"Keys": _keys(*[f"u{i:03d}" for i in range(60)])},
                             RANGE_TABLE: {"Keys": _keys(*[f"u{i:03d}" for i in range(41)], month=True)}},
    "duplicate keys": {HASH_TABLE: {"Keys": _keys("u001", "u002", "u001")}},
    "unknown table": {"no-such-table": {"Keys": _keys("u001")}},
    "key without its hash attribute": {HASH_TABLE: {"Keys": [{"month": {"S": "month_000"}}]}},
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_same_error_as_moto(endpoint, case, monkeypatch):
    (status, body), (reference_status, reference_body) = _both(endpoint, {"RequestItems": ERRORS[case]}, monkeypatch)
    assert status == reference_status and status >= 400
    assert json.loads(body) == json.loads(reference_body)


def test_xml_answers_still_carry_their_request_id(endpoint):
    """The ``<RequestId>`` rewrite is skipped only for bodies without one."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    answer = sts.get_caller_identity()
    request_id = answer["ResponseMetadata"]["RequestId"]
    assert request_id and request_id == answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_an_item_changed_after_it_was_read_is_answered_as_it_is_now(endpoint, monkeypatch):
    """Each item's wire JSON is kept between answers: an update, a put and a delete must show."""
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    request = {"RequestItems": {HASH_TABLE: {"Keys": _keys("u020", "u021", "u022")}}}
    _both(endpoint, request, monkeypatch)  # read once: their JSON is kept
    client.update_item(TableName=HASH_TABLE, Key={"user_id": {"S": "u020"}}, UpdateExpression="SET fee = :f, extra = :e",
                       ExpressionAttributeValues={":f": {"N": "99.25"}, ":e": {"S": "new"}})
    client.put_item(TableName=HASH_TABLE, Item={"user_id": {"S": "u021"}, "fee": {"N": "1"}})
    client.delete_item(TableName=HASH_TABLE, Key={"user_id": {"S": "u022"}})
    answer, reference = _both(endpoint, request, monkeypatch)
    assert answer == reference
    items = {item["user_id"]["S"]: item for item in json.loads(answer[1])["Responses"][HASH_TABLE]}
    assert items["u020"]["fee"] == {"N": "99.25"} and items["u020"]["extra"] == {"S": "new"}
    assert items["u021"] == {"user_id": {"S": "u021"}, "fee": {"N": "1"}}
    assert "u022" not in items
