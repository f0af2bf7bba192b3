"""moto's DynamoDB ``BatchWriteItem`` of plain puts done in front of its WSGI application
(PublishOnlineFeatures / PublishShards rewrite the whole online table each month: 40,000
requests of 25 items for 1M users).

moto's own path costs ≈ 20 ms a request of 25 small items: werkzeug and Flask build and
dispatch the request, ``setup_class`` parses the body against the botocore shape, each put
validates the item, converts every attribute, measures it and checks the keys' sizes, and
the answer goes through moto's shape serializer. Here a request that holds only
``RequestItems`` for one existing table without a range key, secondary indexes or stream,
with 1–25 ``PutRequest`` s whose items hold only non-empty ``S`` attributes (keys distinct,
each key at most 2,048 bytes, the whole body under 400 KB so no item can exceed the item
size limit) is applied to moto's backend directly: the same account and region moto would
pick, the same ``Item`` objects in the same table, and the same status, headers and body
bytes as moto's answer (only ``x-amzn-requestid`` is random in both;
``tests/unit/test_moto_fast_write.py`` compares them and the tables). Everything else (a
delete, a number, a second table, a duplicate key, an unknown table, anything malformed)
goes to moto unchanged, with the body it sent.

It sits inside the persistence layer's ``track_writes``: the request is journaled exactly as
before (its body, when the answer is 2xx), and a restart replays it through moto's own path.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .moto_fast_reads import App, json_fast_path

TARGET = "DynamoDB_20120810.BatchWriteItem"
MAX_REQUESTS = 25  # DynamoDB's limit per call; a longer list is moto's to judge
MAX_BODY_BYTES = 400_000  # below moto's item size limit (405,000): no item in it can exceed it
HASH_KEY_MAX_BYTES = 2048  # moto.dynamodb.limits.HASH_KEY_MAX_LENGTH



def plain_puts(request: Any) -> tuple[str, list[dict[str, str]]] | None:
    """The table name and each put item as {attribute: string} when ``request`` is a plain
    ``BatchWriteItem`` of string-only puts to one table (see the module's docstring), else None."""
    if type(request) is not dict or request.keys() != {"RequestItems"}:
        return None
    tables = request["RequestItems"]
    if type(tables) is not dict or len(tables) != 1:
        return None
    (name, requests), = tables.items()
    if type(name) is not str or type(requests) is not list or not 0 < len(requests) <= MAX_REQUESTS:
        return None
    items = []
    for entry in requests:
        if type(entry) is not dict or entry.keys() != {"PutRequest"}:
            return None
        put = entry["PutRequest"]
        if type(put) is not dict or put.keys() != {"Item"} or type(put["Item"]) is not dict:
            return None
        item = {}
        for attribute, value in put["Item"].items():
            if type(value) is not dict or value.keys() != {"S"} or type(value["S"]) is not str or not value["S"]:
                return None
            item[attribute] = value["S"]
        items.append(item)
    return name, items


def answer_text(table_name: str) -> bytes:
    """moto's answer to a BatchWriteItem of one table (its serializer's key order and spacing)."""
    return json.dumps({"UnprocessedItems": {}, "ItemCollectionMetrics": {}, "ConsumedCapacity": [
        {"TableName": table_name, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}}]}).encode()


def wrap(app: App) -> App:
    """``app`` with plain ``BatchWriteItem`` puts applied here (see the module's docstring)."""
    from moto.core.responses import BaseResponse
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.iam.models import get_account_id_from, mark_account_as_visited

    def scalar(text: str) -> Any:
        value = DynamoType.__new__(DynamoType)
        value.type, value.value = "S", text
        return value

    def apply(environ: dict[str, Any], body: bytes) -> bytes | None:
        """Put the items and return the answer's body, or None when moto should do it."""
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if "AWS4" not in authorization or "/dynamodb/" not in authorization.split(",")[0]:
            return None
        if "HTTP_X_MOTO_ACCOUNT_ID" in environ or "MOTO_ACCOUNT_ID" in os.environ:
            return None  # moto's other ways to name the account: its own code
        if BaseResponse.region_regex.search(f"http://{environ.get('HTTP_HOST', '')}{environ.get('PATH_INFO', '')}") \
                or BaseResponse.region_from_useragent_regex.search(environ.get("HTTP_USER_AGENT", "")):
            return None  # a region in the URL or the User-Agent: moto's own code picks it
        if "AWSAccessKeyId" in environ.get("QUERY_STRING", "") or len(body) >= MAX_BODY_BYTES:
            return None
        region = authorization.split(",")[0].split("/")[2]
        puts = plain_puts(json.loads(body))
        if puts is None:
            return None
        name, items = puts
        match = BaseResponse.access_key_regex.search(authorization)
        access_key = match.group("access_key") if match else "AKIAEXAMPLE"  # moto's default, as it reads it
        account = get_account_id_from(access_key)
        table = dynamodb_backends[account][region].tables.get(name)
        if table is None or table.range_key_attr is not None or table.hash_key_type != "S" \
                or table.global_indexes or table.indexes or table.stream_shard is not None:
            return None
        hash_attr = table.hash_key_attr
        keys = [item.get(hash_attr) for item in items]
        if None in keys or len(set(keys)) != len(keys) \
                or any(len(key.encode("utf-8")) > HASH_KEY_MAX_BYTES for key in keys):  # type: ignore[union-attr]
            return None  # moto's error, in its words
        built = []
        for key, item in zip(keys, items):
            record = Item.__new__(Item)
            record.hash_key, record.range_key = scalar(key), None  # type: ignore[arg-type]
            attrs = LimitedSizeDict.__new__(LimitedSizeDict)
            dict.update(attrs, {attribute: scalar(text) for attribute, text in item.items()})
            record.attrs = attrs
            built.append(record)
        for record in built:  # all checked first: a request is applied whole or not here at all
            table.items[record.hash_key] = record
        mark_account_as_visited(account_id=account, access_key=access_key, service="dynamodb", region=region)
        return answer_text(name)

    return json_fast_path(app, TARGET, apply)
