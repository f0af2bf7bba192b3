"""The human side of the approval gate: find a month's pending approval, answer it.

The pipeline's AwaitApproval state parks its Step Functions task token in S3
(``approvals/<month>.json``); approving sends it back with SendTaskSuccess, rejecting
with SendTaskFailure (error ``Rejected``, the reason in the cause).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from . import storage
from .settings import Settings


class NoPendingApproval(RuntimeError):
    pass


def pending(settings: Settings, month: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        return json.loads(storage.get_bytes(settings.data_bucket, storage.approval_key(month)))
    except ClientError as exc:
        if storage.is_missing(exc):
            raise NoPendingApproval(f"no approval is pending for {month}") from exc
        raise


def _answer(settings: Settings, month: str, send) -> dict[str, Any]:
    import boto3

    record = pending(settings, month)
    sfn = boto3.client("stepfunctions")
    try:
        send(sfn, record["task_token"])
    except (sfn.exceptions.TaskTimedOut, sfn.exceptions.InvalidToken, sfn.exceptions.TaskDoesNotExist) as exc:
        storage.delete(settings.data_bucket, storage.approval_key(month))
        raise NoPendingApproval(f"the approval for {month} is no longer pending (timed out or answered)") from exc
    storage.delete(settings.data_bucket, storage.approval_key(month))
    return record


def approve(settings: Settings, month: str, by: str) -> dict[str, Any]:
    """Let the waiting execution promote its challenger."""
    answer = {"approved": True, "by": by, "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    return _answer(settings, month, lambda sfn, token: sfn.send_task_success(taskToken=token, output=json.dumps(answer)))


def reject(settings: Settings, month: str, by: str, reason: str) -> dict[str, Any]:
    """Stop the waiting execution from promoting; the reason lands on the version's tags."""
    cause = json.dumps({"reason": reason, "by": by})
    return _answer(settings, month,
                   lambda sfn, token: sfn.send_task_failure(taskToken=token, error="Rejected", cause=cause))
