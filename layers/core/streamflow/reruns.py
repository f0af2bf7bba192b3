"""Which execution an upload of a month's manifest belongs to.

An execution is named after the month and its manifest's content (``ingest.execution_name``),
so a repeated upload event finds the execution it already started instead of running the
loop twice. Step Functions keeps a closed execution's name, though: a month whose execution
failed (was aborted, timed out) and is uploaded again unchanged, once its cause is mended,
would find that failed execution and its files would stay in ``months/<month>/`` with
neither an execution nor a quarantine. Such an upload runs the month again, as the next
attempt (``<name>-r2``, ``-r3``, …). Every execution of the content counts: an attempt, and
the local stack's resumption of an interrupted one (``<name>_resume1``); one of them running
or succeeded makes the upload a repeat."""

from __future__ import annotations

from collections.abc import Mapping

ENDED_UNSUCCESSFULLY = frozenset({"FAILED", "ABORTED", "TIMED_OUT"})


def attempt_name(name: str, attempt: int) -> str:
    return name if attempt == 1 else f"{name}-r{attempt}"


def month_of_execution(name: str) -> str:
    """``month_007`` of ``month_007-<hash>``, ``…-r2``, ``…_resume1`` (a month name has no ``-``)."""
    return name.split("-", 1)[0]


def execution_for(name: str, executions: Mapping[str, str]) -> tuple[str, str | None]:
    """(the name of the execution this upload belongs to, its status, None when it is to be
    started). ``executions``: name → status of the executions of this content (``name`` and
    the names made from it)."""
    for candidate, status in sorted(executions.items()):
        if status not in ENDED_UNSUCCESSFULLY:
            return candidate, status
    attempt = 1
    while attempt_name(name, attempt) in executions:
        attempt += 1
    return attempt_name(name, attempt), None


def content_executions(sfn, state_machine_arn: str, name: str) -> dict[str, str]:
    """Name → status of the state machine's executions of the content ``name`` stands for
    (ListExecutions, 1,000 a page: an ingest lists them once)."""
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn,
                                                          PaginationConfig={"PageSize": 1000})
    return {e["name"]: e["status"] for page in pages for e in page["executions"] if e["name"].startswith(name)}
