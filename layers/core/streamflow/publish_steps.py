"""PublishOnlineFeatures shard by shard, for a sharded month (the PublishShards Map).

Each child of the Distributed Map writes ONE shard's users (its
``shards/<month>/shard-NNNNN/features.parquet``) to the online table: memory is one shard,
whatever the month's size, and no whole-month features file is needed. Its count goes to
``shard-NNNNN/published.json`` (``shard_records``), not into the execution's state. A
retried or re-run shard writes the same items again (a put of the same key and value):
idempotent. Only when every shard is written does ``MarkMonthPublished`` (the same
function, ``action: mark``) add up the records and record the month as the online table's
month, once, as the one-shot path does after its
single write; a month older than the one online writes nothing (``month_order.may_publish``,
asked by each shard, so a newer month's items are never overwritten).
"""

from __future__ import annotations

from typing import Any

from . import month_order, online_store, shard_records, storage
from .logs import logger
from .schema import month_index
from .settings import Settings
from .sharding import shard_features_key


def publish_shard(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """One shard's users into the online table (a PublishShards item: ``month``, ``shard``)."""
    month, shard = event["month"], int(event["shard"])
    month_index(month)
    publish, newest = month_order.may_publish(settings, month)
    if not publish:
        logger.info(f"shard {shard} not published: month={month} is older than {newest}, already online")
        outcome: dict[str, Any] = {"shard": shard, "online_items": 0, "skipped": True}
    else:
        frame = storage.read_frame(settings.data_bucket, shard_features_key(month, shard))
        written = online_store.write_online_features(settings.feature_table, month, frame)
        logger.info("shard published", extra={"shard": shard, "online_items": written})
        outcome = {"shard": shard, "online_items": written}
    shard_records.write(settings.data_bucket, month, shard, shard_records.PUBLISHED, event.get("execution"), outcome)
    return outcome


def published_total(shards: list[dict[str, Any]]) -> tuple[int, bool]:
    """(items the shards wrote, whether every shard skipped: a newer month is online)."""
    done = [s for s in shards if s]
    return sum(int(s.get("online_items") or 0) for s in done), bool(done) and all(s.get("skipped") for s in done)


def mark_month_published(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """After every shard is written: the month is the online table's month (unless a newer one
    got there first), and what PublishOnlineFeatures returns on the one-shot path. ``shards``
    is the count (``$.sharding.shards``): the shards' records are read from S3, a missing one
    an error naming its shard."""
    month = event["month"]
    month_index(month)
    shards = shard_records.read_all(settings.data_bucket, month, int(event["shards"]), shard_records.PUBLISHED,
                                    event.get("execution"))
    written, skipped = published_total(shards)
    outcome: dict[str, Any] = {"table": settings.feature_table, "online_items": written, "shards": len(shards)}
    if skipped:
        _, newest = month_order.may_publish(settings, month)
        return {**outcome, "skipped": True, "newest_online_month": newest}
    month_order.mark_published(settings, month)
    logger.info("online features published", extra={"table": settings.feature_table, "online_items": written,
                                                    "shards": outcome["shards"]})
    return outcome
