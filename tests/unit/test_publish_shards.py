"""A sharded month published shard by shard (PublishShards' children, then
MarkMonthPublished), against the emulator's S3 and DynamoDB: every user's online item is the
one the one-shot publish of the same month writes; a shard published twice (a retry) writes
the same items; the month is marked the online table's month once, after the shards; a
month older than the one online writes nothing."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_endpoint import create_table, s3_bucket_in_env
from streamflow import publish_steps, shard_steps, steps, storage
from streamflow.month_order import newest_online_month
from streamflow.shard_records import PUBLISHED, ShardRecordMissing, record_key
from streamflow.settings import Settings
from test_shard_steps import _as_parts, _run_sharded, _upload

BUCKET = "shard-steps"  # test_shard_steps' helpers upload there
TABLES = {"sharded": "online-sharded", "whole": "online-whole"}
ORDER = "month-order"


@pytest.fixture(scope="module")
def endpoint():
    with s3_bucket_in_env(BUCKET) as client:
        url = client.meta.endpoint_url
        for table in TABLES.values():
            create_table(url, table, "user_id")
        create_table(url, ORDER, "entry")
        yield client


def _settings(table: str) -> Settings:
    return Settings.from_env({"DATA_BUCKET": BUCKET, "USERS_PER_SHARD": "150", "FEATURE_TABLE": table,
                              "MONTH_ORDER_TABLE": ORDER})


def _publish() -> object:
    """The Publish function's step, as functions/publish/app.py routes it."""
    return shard_steps.route(steps.publish_online_features, publish_steps.publish_shard,
                             mark=publish_steps.mark_month_published)


def _items(table: str) -> dict[str, dict]:
    client, items, kwargs = boto3.client("dynamodb"), {}, {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        items.update({item["user_id"]["S"]: item for item in page["Items"]})
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_a_sharded_month_is_published_shard_by_shard_as_the_whole_month(endpoint, month0_files):
    publish = _publish()
    whole = _settings(TABLES["whole"])
    steps.validate(whole, {"month": "month_003", "files": _upload(endpoint, "month_003", month0_files)})
    steps.build_month_features(whole, {"month": "month_003"})
    assert publish(whole, {"month": "month_003"})["online_items"] == 500

    sharded = _settings(TABLES["sharded"])
    sharding, results = _run_sharded(sharded, "month_004", _upload(endpoint, "month_004", _as_parts(month0_files)))
    shard_steps.merge_shards(sharded, {"month": "month_004", "execution": "e1", "shards": len(results)})
    assert storage.object_size(BUCKET, storage.features_key("month_004")) is None
    items = [{"month": "month_004", "shard": r["shard"], "shards": 4, "execution": "e1"} for r in results]
    outputs = [publish(sharded, item) for item in items]
    assert newest_online_month(sharded) == "month_003"  # not marked by a shard
    assert publish(sharded, items[0]) == outputs[0]  # a retry: same items
    assert [json.loads(storage.get_bytes(BUCKET, record_key("month_004", n, PUBLISHED))) for n in range(4)] == [
        dict(output, execution="e1") for output in outputs]  # each shard's record, read by the mark
    marked = publish(sharded, {"action": "mark", "month": "month_004", "execution": "e1", "shards": 4})
    assert marked == {"table": TABLES["sharded"], "online_items": 500, "shards": 4}
    assert newest_online_month(sharded) == "month_004"

    by_shard, one_shot = _items(TABLES["sharded"]), _items(TABLES["whole"])
    assert len(by_shard) == 500 and by_shard.keys() == one_shot.keys()
    for user, item in one_shot.items():
        assert by_shard[user]["features"] == item["features"]
        assert by_shard[user]["month"] == {"S": "month_004"}

    older = [publish(sharded, {"month": "month_002", "shard": n, "shards": 2}) for n in range(2)]  # < month_004
    assert older[1] == {"shard": 1, "online_items": 0, "skipped": True}
    skipped = publish(sharded, {"action": "mark", "month": "month_002", "shards": 2})
    assert skipped["skipped"] and skipped["newest_online_month"] == "month_004"
    assert newest_online_month(sharded) == "month_004"


def test_the_shards_outputs_add_up():
    assert publish_steps.published_total([{"online_items": 3}, {"online_items": 4}]) == (7, False)
    assert publish_steps.published_total([{"online_items": 0, "skipped": True}] * 2) == (0, True)
    assert publish_steps.published_total([{"online_items": 0, "skipped": True}, {"online_items": 2}]) == (2, False)
    assert publish_steps.published_total([]) == (0, False)


def test_a_shard_without_its_record_fails_the_mark_naming_the_shard(endpoint):
    """The Map said every child succeeded: a record missing (or another execution's) is an
    error that names the shard, never a shard left out of the total."""
    settings, publish = _settings(TABLES["sharded"]), _publish()
    for shard in range(3):
        storage.put_json(BUCKET, record_key("month_007", shard, PUBLISHED),
                         {"shard": shard, "online_items": 5, "execution": "e7"})
    assert publish(settings, {"action": "mark", "month": "month_007", "execution": "e7", "shards": 3})[
        "online_items"] == 15
    with pytest.raises(ShardRecordMissing, match=r"shard 3 of month_007 left no published record "
                                                 r"\(shards/month_007/shard-00003/published.json\)"):
        publish(settings, {"action": "mark", "month": "month_007", "execution": "e7", "shards": 4})
    with pytest.raises(ShardRecordMissing, match="shard 0 of month_007: .* written by execution e7, not e8"):
        publish(settings, {"action": "mark", "month": "month_007", "execution": "e8", "shards": 3})
