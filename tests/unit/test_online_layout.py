"""The online table's item layout: ``user_id``, ``month`` and the model features packed in one
JSON string (``features``). Items written in the earlier layout (one typed attribute per
feature) read back to the same rows, one user at a time and in batches, so the API answers
the same for them until the next month's publish rewrites them. Real DynamoDB endpoint: the
emulator's moto server."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from aws_endpoint import create_table, moto_endpoint_in_env
from streamflow import online_store
from streamflow.schema import BOOLEAN_FEATURES, MODEL_FEATURES, NUMERIC_FEATURES
from test_scorer import _frame

USERS = 150  # two BatchGetItem calls


def _per_attribute_item(user_id: str, month: str, row: dict[str, Any]) -> dict[str, Any]:
    """An item as PublishOnlineFeatures wrote it before the packed layout."""
    item: dict[str, Any] = {"user_id": {"S": user_id}, "month": {"S": month}}
    for column in MODEL_FEATURES:
        value = row[column]
        if column in BOOLEAN_FEATURES:
            item[column] = {"BOOL": bool(value)}
        elif isinstance(value, str):
            item[column] = {"S": value}
        else:
            item[column] = {"N": str(Decimal(str(float(value))))}
    return item


def _records() -> list[tuple[str, dict[str, Any]]]:
    frame = _frame().head(USERS)[MODEL_FEATURES]
    return [(str(user), row) for user, row in zip(frame.index, frame.to_dict("records"))]


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint_in_env() as url:
        yield url


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal rows, NaN equal to NaN."""
    return a.keys() == b.keys() and all(
        (isinstance(a[k], float) and isinstance(b[k], float) and math.isnan(a[k]) and math.isnan(b[k]))
        or (a[k] == b[k] and type(a[k]) is type(b[k])) for k in a)


def test_a_packed_item_reads_back_the_values_the_per_attribute_layout_did():
    """No I/O: every row of a month, plus NaN and integers, through both layouts."""
    records = _records()
    odd = dict(records[0][1])
    odd.update({NUMERIC_FEATURES[0]: float("nan"), NUMERIC_FEATURES[1]: 7, "paperless_billing": 1})
    for user, row in records + [("odd", odd)]:
        packed = online_store._from_wire(online_store._wire_item(user, "month_000", row))
        assert _same(packed, online_store._from_wire(_per_attribute_item(user, "month_000", row)))
    assert isinstance(online_store._from_wire(online_store._wire_item("odd", "m", odd))[NUMERIC_FEATURES[1]], float)


def test_published_items_hold_the_features_in_one_string(endpoint):
    create_table(endpoint, "unit-layout-packed", "user_id")
    records = _records()
    frame = _frame().head(USERS)
    assert online_store.write_online_features("unit-layout-packed", "month_004", frame) == USERS
    user, row = records[3]
    item = boto3.client("dynamodb").get_item(TableName="unit-layout-packed", Key={"user_id": {"S": user}})["Item"]
    assert set(item) == {"user_id", "month", "features"}
    assert item["month"] == {"S": "month_004"}
    packed = json.loads(item["features"]["S"])
    assert list(packed) == MODEL_FEATURES
    assert packed["net_service"] == row["net_service"]
    assert packed["monthly_fee"] == float(row["monthly_fee"])


def test_items_written_before_are_read_as_the_packed_ones(endpoint):
    """A table holding both layouts (a publish that rewrote half of it): single and batch
    reads give the rows the packed table gives."""
    create_table(endpoint, "unit-layout-new", "user_id")
    create_table(endpoint, "unit-layout-mixed", "user_id")
    records = _records()
    online_store.write_online_features("unit-layout-new", "month_000", _frame().head(USERS))
    online_store.write_online_features("unit-layout-mixed", "month_000", _frame().head(USERS).iloc[::2])
    dynamodb = boto3.client("dynamodb")
    old = [_per_attribute_item(user, "month_000", row) for user, row in records[1::2]]
    for start in range(0, len(old), 25):
        dynamodb.batch_write_item(RequestItems={"unit-layout-mixed": [{"PutRequest": {"Item": i}}
                                                                      for i in old[start:start + 25]]})
    assert "features" not in dynamodb.get_item(TableName="unit-layout-mixed",
                                               Key={"user_id": {"S": records[1][0]}})["Item"]
    users = [user for user, _ in records]
    new_rows = online_store.read_online_rows("unit-layout-new", users)
    mixed_rows = online_store.read_online_rows("unit-layout-mixed", users)
    assert list(new_rows) == list(mixed_rows) == users
    assert all(_same(new_rows[u], mixed_rows[u]) for u in users)
    for user in users[:6]:
        assert _same(online_store.read_online_row("unit-layout-mixed", user), new_rows[user])


def test_a_packed_item_from_another_writer_reads_integers_as_floats_and_missing_as_none():
    row = online_store._from_wire({"user_id": {"S": "u"}, "features": {"S": '{"months_active":3,"net_service":"DSL"}'}})
    assert row["months_active"] == 3.0 and type(row["months_active"]) is float
    assert row["net_service"] == "DSL"
    assert all(row[c] is None for c in MODEL_FEATURES if c not in ("months_active", "net_service"))


def test_the_architecture_document_names_the_item_layout():
    text = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    assert f"`user_id`,\n   `month` and `{online_store.PACKED_ATTRIBUTE}`" in text
