"""The online feature table (DynamoDB) that the API reads: one item per user_id."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

import pandas as pd

from .features import normalise_feature_types
from .schema import BOOLEAN_FEATURES, ID_COLUMN, MODEL_FEATURES


@functools.cache
def _table(name: str):
    import boto3

    return boto3.resource("dynamodb").Table(name)


def _to_item(user_id: str, month: str, row: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {ID_COLUMN: user_id, "month": month}
    for column in MODEL_FEATURES:
        value = row[column]
        if column in BOOLEAN_FEATURES:
            item[column] = bool(value)
        elif isinstance(value, str):
            item[column] = value
        else:
            item[column] = Decimal(str(float(value)))
    return item


def write_online_features(table_name: str, month: str, frame: pd.DataFrame) -> int:
    """Upsert every user's features for the month; returns the number of items written."""
    table = _table(table_name)
    count = 0
    with table.batch_writer(overwrite_by_pkeys=[ID_COLUMN]) as batch:
        for user_id, row in zip(frame.index, frame[MODEL_FEATURES].to_dict("records")):
            batch.put_item(Item=_to_item(str(user_id), month, row))
            count += 1
    return count


def read_online_features(table_name: str, user_id: str) -> pd.DataFrame | None:
    """One user's features as a one-row frame ready for the model, or None if unknown."""
    item = _table(table_name).get_item(Key={ID_COLUMN: user_id}).get("Item")
    if item is None:
        return None
    row = {column: item.get(column) for column in MODEL_FEATURES}
    for column, value in row.items():
        if isinstance(value, Decimal):
            row[column] = float(value)
    frame = pd.DataFrame([row], index=pd.Index([user_id], name=ID_COLUMN))
    return normalise_feature_types(frame)

