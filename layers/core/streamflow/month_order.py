"""Months decide in month order: the in-flight register (DynamoDB) and the task tokens of
the executions waiting in it (Step Functions). The rules themselves are in ``ordering``.

How a month waits, without a Lambda running while it waits:

* ``RegisterMonth`` (first state) puts ``{execution, month}`` in the order table.
* ``AwaitEarlierMonths`` (after BuildFeatures, before drift) is a
  ``lambda:invoke.waitForTaskToken`` task: ``await_earlier_months`` stores the task token on
  the month's entry, then looks for earlier months in flight; with none it sends
  ``SendTaskSuccess`` for its own token and returns. Otherwise it returns and the execution
  waits (Step Functions holds it; no Lambda runs, nothing polls).
* ``ReleaseMonth`` (after Summary) deletes the entry and sends ``SendTaskSuccess`` to every
  waiter that no earlier month blocks any more. A failed, aborted or timed-out execution is
  released by ``month_ended`` (EventBridge "Step Functions Execution Status Change"), which
  also deletes the tables Validate checked for it (``checked_tables``).

Each side writes before it reads (strongly consistent), so a waiter that parks its token
while the month before it is releasing is woken by one of the two, possibly both: a second
``SendTaskSuccess`` on a used token is refused by Step Functions and ignored here. Before
waiting on a month, its execution is asked whether it still runs (an entry whose release
was lost is dropped, not waited on forever).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .logs import logger
from .ordering import InFlight, blocking, should_publish
from .schema import month_index
from .settings import Settings

ENTRY_PREFIX = "execution#"
ONLINE_MONTH_KEY = "online#newest_month"  # the newest month whose features are online
KEY = "entry"
RUNNING = "RUNNING"
# What SendTaskSuccess answers for a token already used, expired or of a finished execution.
STALE_TOKEN_ERRORS = ("TaskDoesNotExist", "TaskTimedOut", "InvalidToken", "InvalidOutput")


def _table(settings: Settings):
    import boto3

    return boto3.resource("dynamodb").Table(settings.order_table)


def _sfn():
    import boto3

    return boto3.client("stepfunctions")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _execution_arn(settings: Settings, execution: str) -> str:
    return settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{execution}"


def _entries(settings: Settings) -> list[dict[str, Any]]:
    table, items, kwargs = _table(settings), [], {"ConsistentRead": True}
    while True:
        page = table.scan(**kwargs)
        items.extend(item for item in page.get("Items", []) if str(item.get(KEY, "")).startswith(ENTRY_PREFIX))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _in_flight(items: list[dict[str, Any]]) -> list[InFlight]:
    return [InFlight(execution=str(i["execution"]), month=str(i["month"])) for i in items]


def _still_running(settings: Settings, entry: InFlight) -> bool:
    """False when the entry's execution ended (or never started): its release was lost."""
    if not settings.state_machine_arn:
        return True
    sfn = _sfn()
    try:
        status = sfn.describe_execution(executionArn=_execution_arn(settings, entry.execution))["status"]
    except sfn.exceptions.ExecutionDoesNotExist:
        status = "MISSING"
    if status != RUNNING:
        logger.warning(f"dropping {entry.month} ({entry.execution}) from the months in flight: execution {status}")
        _table(settings).delete_item(Key={KEY: ENTRY_PREFIX + entry.execution})
        return False
    return True


def _release_token(settings: Settings, execution: str, token: str, waited_for: list[str]) -> bool:
    """Let the parked execution go on; its entry now says it is deciding."""
    from botocore.exceptions import ClientError

    try:
        _sfn().send_task_success(taskToken=token, output=json.dumps({"waited_for": waited_for}))
    except ClientError as exc:
        if exc.response["Error"]["Code"] in STALE_TOKEN_ERRORS:
            return False
        raise
    try:
        _table(settings).update_item(Key={KEY: ENTRY_PREFIX + execution}, UpdateExpression="SET #s = :s",
                                     ConditionExpression="attribute_exists(#k)",
                                     ExpressionAttributeNames={"#s": "state", "#k": KEY},
                                     ExpressionAttributeValues={":s": "deciding"})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise  # (already released and deleted: nothing to mark)
    return True


# ---- the steps ----------------------------------------------------------------------------

def register_month(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """The month is in flight from now until it decides (or its execution ends)."""
    month, execution = event["month"], event["execution"]
    month_index(month)
    _table(settings).put_item(Item={KEY: ENTRY_PREFIX + execution, "execution": execution, "month": month,
                                    "registered_at": _now(), "state": "running"})
    logger.info(f"month in flight: {month} ({execution})")
    return {"registered": True}


def await_earlier_months(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """Park the task token; let the execution go on at once when no earlier month is in flight."""
    month, execution, token = event["month"], event["execution"], event["task_token"]
    table = _table(settings)
    table.update_item(Key={KEY: ENTRY_PREFIX + execution},
                      UpdateExpression="SET task_token = :t, #s = :s, waiting_since = :w, #m = :m, execution = :e",
                      ExpressionAttributeNames={"#s": "state", "#m": "month"},
                      ExpressionAttributeValues={":t": token, ":s": "waiting", ":w": _now(), ":m": month,
                                                 ":e": execution})
    blockers = [e for e in blocking(month, execution, _in_flight(_entries(settings))) if _still_running(settings, e)]
    if not blockers:
        _release_token(settings, execution, token, [])
        return {"waiting": False, "waiting_for": []}
    names = [f"{b.month} ({b.execution})" for b in blockers]
    table.update_item(Key={KEY: ENTRY_PREFIX + execution}, UpdateExpression="SET waiting_for = :f",
                      ExpressionAttributeValues={":f": [b.month for b in blockers]})
    logger.info(f"WAITING month={month} for earlier months in flight: {', '.join(names)}")
    return {"waiting": True, "waiting_for": [b.month for b in blockers]}


def _wake_waiters(settings: Settings) -> list[str]:
    """Send SendTaskSuccess to every parked month no earlier month blocks any more."""
    items = _entries(settings)
    in_flight = _in_flight(items)
    woken = []
    for item in items:
        if item.get("state") != "waiting" or not item.get("task_token"):
            continue
        if blocking(str(item["month"]), str(item["execution"]), in_flight):
            continue
        if _release_token(settings, str(item["execution"]), str(item["task_token"]),
                          [str(m) for m in item.get("waiting_for", [])]):
            woken.append(str(item["month"]))
            logger.info(f"month {item['month']} may decide now ({item['execution']})")
    return woken


def release_month(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """The month decided: out of the register, and the next waiting month goes on."""
    _table(settings).delete_item(Key={KEY: ENTRY_PREFIX + event["execution"]})
    return {"released": True, "woken": _wake_waiters(settings)}


def month_ended(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge "Step Functions Execution Status Change" for a failed, aborted or timed-out
    execution: it will never decide, so it must not hold later months back; and the tables
    Validate checked for it, which BuildFeatures deletes only when it gets that far, go too
    (a retried or redriven BuildFeatures without them checks the month's files again)."""
    detail = event.get("detail") or {}
    execution = str(detail.get("name") or str(detail.get("executionArn", "")).rsplit(":", 1)[-1])
    if not execution:
        return {"released": False}
    month = _month_of(settings, execution)  # before the release deletes its entry
    logger.info(f"execution {execution} ended {detail.get('status')}: released from the months in flight")
    outcome = release_month(settings, {"execution": execution})
    if month and settings.data_bucket:
        from . import checked_tables

        checked_tables.delete(settings.data_bucket, month, execution)
        logger.info(f"deleted what Validate checked for {month} in that execution, if anything: "
                    f"s3://{settings.data_bucket}/{checked_tables.folder(month, execution)}")
    return {**outcome, "month": month}


def _month_of(settings: Settings, execution: str) -> str | None:
    """The month of an execution in the register (None: it ended before RegisterMonth, so
    before Validate, or was released already)."""
    item = _table(settings).get_item(Key={KEY: ENTRY_PREFIX + execution}, ConsistentRead=True).get("Item")
    return str(item["month"]) if item and item.get("month") else None


def waiting_for(settings: Settings, execution: str) -> list[str]:
    """The earlier months this execution waits for now (empty when it is not waiting)."""
    items = _entries(settings)
    mine = next((i for i in items if i.get("execution") == execution), None)
    if mine is None or mine.get("state") != "waiting":
        return []
    return [b.month for b in blocking(str(mine["month"]), execution, _in_flight(items))]


# ---- the online table's newest month ------------------------------------------------------

def newest_online_month(settings: Settings) -> str | None:
    if not settings.order_table:
        return None
    item = _table(settings).get_item(Key={KEY: ONLINE_MONTH_KEY}, ConsistentRead=True).get("Item")
    return str(item["month"]) if item else None


def may_publish(settings: Settings, month: str) -> tuple[bool, str | None]:
    newest = newest_online_month(settings)
    return should_publish(month, newest), newest


def mark_published(settings: Settings, month: str) -> None:
    """Record ``month`` as the online table's month unless a newer one got there first."""
    if not settings.order_table:
        return
    from botocore.exceptions import ClientError

    try:
        _table(settings).put_item(
            Item={KEY: ONLINE_MONTH_KEY, "month": month, "month_number": month_index(month), "at": _now()},
            ConditionExpression="attribute_not_exists(#k) OR month_number <= :n",
            ExpressionAttributeNames={"#k": KEY}, ExpressionAttributeValues={":n": month_index(month)},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
