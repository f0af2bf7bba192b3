"""A lease (DynamoDB conditional write) that serialises alias moves across executions.

Two months promoted at the same time must not both read the old champion and both write:
the read-decide-write of Promote (and rollback) runs while holding this lease, so the
second one sees the first one's champion and decides again.

The holder may re-enter: Promote's owner is its execution's name, so when Step Functions
retries a Promote whose Lambda died holding the lease, the retry takes it at once instead of
waiting out the TTL (a nested ``hold`` in one process neither re-writes nor releases it).
The TTL outlives the longest holder: Promote's function and Task time out at
``PROMOTE_TIMEOUT_SECONDS``; a lease lasts ``TTL_MARGIN_SECONDS`` more, so it cannot expire
under a holder that is still running.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PROMOTION_LEASE = "promotion"
PROMOTE_TIMEOUT_SECONDS = 300  # template.yaml's PromoteFunction Timeout (tests/unit/test_lease.py checks)
TTL_MARGIN_SECONDS = 60
DEFAULT_TTL_SECONDS = PROMOTE_TIMEOUT_SECONDS + TTL_MARGIN_SECONDS
# (table, lease, owner) of the leases this process holds now: the outermost hold adds and
# removes its key; a hold nested in it (same owner) finds the key and only runs its block.
_held_here: set[tuple[str, str, str]] = set()


class LeaseBusy(RuntimeError):
    """Someone else holds the lease for longer than we were willing to wait (retried by
    the state machine)."""


@contextmanager
def hold(table_name: str, name: str = PROMOTION_LEASE, owner: str | None = None,
         ttl_seconds: int = DEFAULT_TTL_SECONDS, wait_seconds: float = 60.0) -> Iterator[str]:
    """Hold the lease ``name`` for the block; an expired lease (crashed holder) is taken over,
    and one held by ``owner`` already (a retried holder) is taken again."""
    owner = owner or uuid.uuid4().hex
    key = (table_name, name, owner)
    if key in _held_here:
        yield owner
        return
    with _hold(table_name, name, owner, ttl_seconds, wait_seconds):
        _held_here.add(key)
        try:
            yield owner
        finally:
            _held_here.discard(key)


@contextmanager
def _hold(table_name: str, name: str, owner: str, ttl_seconds: int, wait_seconds: float) -> Iterator[None]:
    import boto3
    from botocore.exceptions import ClientError

    table = boto3.resource("dynamodb").Table(table_name)
    deadline = time.monotonic() + wait_seconds
    while True:
        now = int(time.time())
        try:
            table.put_item(
                Item={"lease_id": name, "owner": owner, "expires_at": now + ttl_seconds},
                ConditionExpression="attribute_not_exists(lease_id) OR expires_at < :now OR #o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": now, ":owner": owner},
            )
            break
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            if time.monotonic() > deadline:
                raise LeaseBusy(f"lease {name!r} is held by another run; gave up after {wait_seconds:.0f} s") from exc
            time.sleep(0.25)
    try:
        yield
    finally:
        try:
            table.delete_item(Key={"lease_id": name}, ConditionExpression="#o = :owner",
                              ExpressionAttributeNames={"#o": "owner"}, ExpressionAttributeValues={":owner": owner})
        except ClientError:
            pass  # it expired and someone else took it: nothing of ours to release
