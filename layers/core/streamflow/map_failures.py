"""Which shard failed: the cause of a sharded month's failed Distributed Map, made readable.

When a child of SplitParts, ValidateShards, PublishShards or ScoreShards fails (its Lambda raised after
its retries), the Map Run fails with ``States.ExceedToleratedFailureThreshold`` and all the
parent execution sees is that generic cause, on AWS as in the emulator. The ``<Map>NameShards``
Task (the Order function, ``action: map_failure``) runs from the Map's ``Catch`` and asks
Step Functions for the children: ``ListMapRuns`` of the execution (the latest FAILED run of
the Map's ``Label``), ``DescribeMapRun`` (how many items failed of how many),
``ListExecutions(mapRunArn, statusFilter=FAILED)`` (at most ``NAMED`` of them) and
``DescribeExecution`` of each (its input names the ``month`` and ``shard``, or for
SplitParts the uploaded file's ``name``; its error and cause are the child's own: the Lambda's ``errorType`` and ``errorMessage``). The cause then
reads, e.g.::

    PublishShards failed: 1 of 3 shards failed: shard 1 (shards/month_002/shard-00001/features.parquet):
    An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does not exist.

(the error type is left out when the message names it, as botocore's do).

If the look-up finds nothing or fails, the generic cause is kept (``explain_map_failure``
returns the error it was given; a failure of the Task itself is caught in the ASL into the
same generic path): the month fails either way, never less.

The cause is built by pure functions (``shard_failure``, ``failure_cause``); the Step
Functions calls are in ``failed_shards``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .causes import MAX_MESSAGE, one_line
from .logs import logger
from .settings import Settings
from .sharding import shard_features_key, shard_folder
from .storage import month_prefix

NAMED = 3  # children described and named; the others are counted
FIRST_MESSAGE = 150  # characters of the first shard's message (the cause stays one short line)
OTHER_MESSAGE = 60
# What each Map's child reads of its shard (named in the cause); ValidateShards reads its parts.
SHARD_INPUT = {"PublishShards": shard_features_key, "ScoreShards": shard_features_key}
ITEM_NOUN = {"SplitParts": "part"}  # what a Map's item is (a shard unless named here)


@dataclass(frozen=True)
class ShardFailure:
    """One failed child execution: its item's month and shard, its error and message."""

    shard: int | None
    month: str | None
    error: str
    message: str
    file: str | None = None  # a SplitParts child's uploaded file (its items name no shard)


def _message_of(error: str, cause: str) -> tuple[str, str]:
    """(error type, message) from a child's error and cause: a Lambda's cause is its error JSON
    (``errorType``, ``errorMessage``, ``stackTrace``); any other cause is the message itself."""
    text = (cause or "").strip()
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("errorMessage") is not None:
            return str(body.get("errorType") or error or ""), str(body["errorMessage"])
    return error or "", text


def shard_failure(description: dict[str, Any]) -> ShardFailure:
    """A ``DescribeExecution`` answer of a failed child → the shard and what it said."""
    try:
        item = json.loads(description.get("input") or "{}")
    except ValueError:
        item = {}
    item = item if isinstance(item, dict) else {}
    shard = item.get("shard")
    error, message = _message_of(str(description.get("error") or ""), str(description.get("cause") or ""))
    return ShardFailure(shard=int(shard) if isinstance(shard, int | str) and str(shard).isdigit() else None,
                        month=str(item["month"]) if item.get("month") else None, error=error, message=message,
                        file=str(item["name"]) if item.get("name") else None)


def shard_where(step: str, failure: ShardFailure) -> str:
    """``shard 1 (shards/month_002/shard-00001/features.parquet)``: the shard and its S3 key
    (the file the step reads; ValidateShards reads the shard's folder); for a SplitParts child,
    ``part users/part-00003.csv (months/<month>/users/part-00003.csv)``."""
    if failure.file is not None and failure.shard is None:
        return f"part {failure.file} ({month_prefix(failure.month)}{failure.file})" if failure.month else (
            f"part {failure.file}")
    if failure.shard is None:
        return "a shard"
    if failure.month is None:
        return f"shard {failure.shard}"
    key = SHARD_INPUT.get(step, shard_folder)(failure.month, failure.shard)
    return f"shard {failure.shard} ({key})"


def _said(failure: ShardFailure, limit: int) -> str:
    """``NoSuchKey: …`` (the type left out when the message already names it)."""
    message = one_line(failure.message, limit) if failure.message else ""
    if not message:
        return failure.error or "failed without a message"
    if not failure.error or failure.error in message:
        return message
    return f"{failure.error}: {message}"


def failure_cause(step: str, failures: list[ShardFailure], failed: int | None = None,
                  total: int | None = None) -> str:
    """The cause without its ``<step> failed: `` (the Fail state adds it), one line of at most
    ``MAX_MESSAGE`` characters: how many shards failed; the first one (in shard order) with its
    S3 key, error and message; as many others as fit (``the same`` for the same error); the
    rest counted."""
    failures = sorted(failures, key=lambda f: (f.shard is None, f.shard or 0, f.file or ""))
    failed = max(failed or 0, len(failures))
    noun = ITEM_NOUN.get(step, "shard")
    head = f"{failed} of {total} {noun}s failed" if total else (
        f"{failed} {noun} failed" if failed == 1 else f"{failed} {noun}s failed")
    if not failures:
        return head

    def text(parts: list[str]) -> str:
        rest = failed - len(parts)
        return f"{head}: " + "; ".join(parts + ([f"and {rest} more"] if rest else []))

    first = failures[0]
    parts = [f"{shard_where(step, first)}: {_said(first, FIRST_MESSAGE)}"]
    for failure in failures[1:]:
        same = (failure.error, failure.message) == (first.error, first.message)
        name = (f"shard {failure.shard}" if failure.shard is not None else
                f"part {failure.file}" if failure.file is not None else f"a {noun}")
        part = f"{name}: {'the same' if same else _said(failure, OTHER_MESSAGE)}"
        if len(text(parts + [part])) > MAX_MESSAGE:
            break
        parts.append(part)
    return one_line(text(parts), MAX_MESSAGE)


def _map_label(map_run_arn: str) -> str:
    """``arn:…:mapRun:pipeline/PublishShards:1234`` → ``PublishShards``."""
    return map_run_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def latest_failed_run(map_runs: list[dict[str, Any]], step: str) -> str | None:
    """The ARN of the step's latest FAILED map run (a Map run once per execution, but a
    redriven execution runs it again), or None."""
    runs = [r for r in map_runs if _map_label(r["mapRunArn"]) == step and r.get("status", "FAILED") == "FAILED"]
    runs.sort(key=lambda r: str(r.get("startDate") or ""))
    return runs[-1]["mapRunArn"] if runs else None


def failed_shards(sfn: Any, execution_arn: str, step: str, named: int = NAMED) -> tuple[list[ShardFailure], int, int]:
    """(the first ``named`` failed children, how many items failed, how many there were), read
    from Step Functions; ([], 0, 0) when the execution has no failed run of ``step``."""
    runs: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_map_runs").paginate(executionArn=execution_arn):
        runs += page.get("mapRuns", [])
    map_run_arn = latest_failed_run(runs, step)
    if map_run_arn is None:
        return [], 0, 0
    counts = sfn.describe_map_run(mapRunArn=map_run_arn).get("itemCounts") or {}
    children = sfn.list_executions(mapRunArn=map_run_arn, statusFilter="FAILED", maxResults=named)
    failures = [shard_failure(sfn.describe_execution(executionArn=child["executionArn"]))
                for child in children.get("executions", [])[:named]]
    failed = int(counts.get("failed") or 0) + int(counts.get("timedOut") or 0) + int(counts.get("aborted") or 0)
    return failures, failed, int(counts.get("total") or 0)


def explain_map_failure(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """The ``<Map>NameShards`` step: ``{"Error", "Cause"}`` for the Map's Fail state, the
    cause naming the failed shards; the ``error`` it was given when nothing is found."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    step, error = event["step"], dict(event.get("error") or {})
    try:
        failures, failed, total = failed_shards(boto3.client("stepfunctions"), event["execution_arn"], step)
    except (BotoCoreError, ClientError) as exc:
        logger.warning(f"{step}: the failed shards could not be read, the generic cause is kept: {exc}")
        return error
    if not failures:
        logger.warning(f"{step}: no failed child execution found, the generic cause is kept")
        return error
    cause = failure_cause(step, failures, failed, total)
    logger.error(f"{step} failed: {cause}", extra={"map_error": error.get("Error"), "failed_shards": failed,
                                                   "shards": total})
    return {"Error": error.get("Error") or "States.ExceedToleratedFailureThreshold", "Cause": cause}
