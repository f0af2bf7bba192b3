"""A lease (DynamoDB conditional write) that serialises alias moves across executions.

Two months promoted at the same time must not both read the old champion and both write:
the read-decide-write of Promote (and rollback) runs while holding this lease, so the
second one sees the first one's champion and decides again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PROMOTION_LEASE = "promotion"


class LeaseBusy(RuntimeError):
    """Someone else holds the lease for longer than we were willing to wait (retried by
    the state machine)."""


@contextmanager
def hold(table_name: str, name: str = PROMOTION_LEASE, owner: str | None = None,
         ttl_seconds: int = 300, wait_seconds: float = 60.0) -> Iterator[str]:
    """Hold the lease ``name`` for the block; an expired lease (crashed holder) is taken over."""
    import boto3
    from botocore.exceptions import ClientError

    table = boto3.resource("dynamodb").Table(table_name)
    owner = owner or uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while True:
        now = int(time.time())
        try:
            table.put_item(
                Item={"lease_id": name, "owner": owner, "expires_at": now + ttl_seconds},
                ConditionExpression="attribute_not_exists(lease_id) OR expires_at < :now",
                ExpressionAttributeValues={":now": now},
            )
            break
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            if time.monotonic() > deadline:
                raise LeaseBusy(f"lease {name!r} is held by another run; gave up after {wait_seconds:.0f} s") from exc
            time.sleep(0.25)
    try:
        yield owner
    finally:
        try:
            table.delete_item(Key={"lease_id": name}, ConditionExpression="#o = :owner",
                              ExpressionAttributeNames={"#o": "owner"}, ExpressionAttributeValues={":owner": owner})
        except ClientError:
            pass  # it expired and someone else took it: nothing of ours to release
