"""Executions a stop or crash interrupted, and ``streamflow resume <month>``.

A durable stack restores an execution that was running when it stopped as ``ABORTED`` with
the error ``persistence.INTERRUPTED_ERROR`` (its interpreter thread is gone). ``resume``
starts the month once more with the interrupted execution's input under a derived name,
``<execution>_resume<N>``: the original name stays taken, so a second upload of the same
month still finds it (ingest's idempotency holds), and the input still names the original
execution, so log lines and registry tags stay attributed to it. The resumed run starts at
the first step: a month interrupted before its decision gets exactly one (a challenger the
interrupted run registered stays in the registry, undecided). Nothing resumes by itself on
``up``: what was interrupted is shown and left to the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .config import StackConfig
from .stack_client import _client, state_machine_arn
from .persistence import INTERRUPTED_ERROR

RESUME_SUFFIX = re.compile(r"_resume(\d+)$")


class NothingToResume(LookupError):
    pass


def is_interrupted(description: dict[str, Any]) -> bool:
    """A DescribeExecution answer for an execution a stop or crash cut short."""
    return description.get("status") == "ABORTED" and description.get("error") == INTERRUPTED_ERROR


def original_name(name: str) -> str:
    return RESUME_SUFFIX.sub("", name)


def attempt(name: str) -> int:
    found = RESUME_SUFFIX.search(name)
    return int(found.group(1)) if found else 0


def month_of(name: str) -> str:
    return original_name(name).rsplit("-", 1)[0]


def latest_interrupted(rows: list[dict[str, Any]]) -> list[str]:
    """Months whose newest execution (rows from ``views.executions``) was interrupted."""
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:  # oldest first
        newest[month_of(row["name"])] = row
    return [month for month, row in newest.items() if row.get("interrupted")]


@dataclass(frozen=True)
class Resumed:
    month: str
    interrupted: str
    execution_name: str
    execution_arn: str


def resume(config: StackConfig, month: str) -> Resumed:
    """Start the month's interrupted execution again, once (see the module's docstring)."""
    sfn = _client(config, "stepfunctions")
    machine = state_machine_arn(config)
    listed = [e for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
              for e in page["executions"] if month_of(e["name"]) == month]
    if not listed:
        raise NothingToResume(f"no execution of {month}")
    newest = max(listed, key=lambda e: (e["startDate"], attempt(e["name"])))
    if newest["status"] == "RUNNING":
        raise NothingToResume(f"{month}: {newest['name']} is running; nothing to resume")
    description = sfn.describe_execution(executionArn=newest["executionArn"])
    if not is_interrupted(description):
        raise NothingToResume(f"{month}: its newest execution {newest['name']} ended {description['status']}, "
                              "it was not interrupted; nothing to resume")
    base = original_name(newest["name"])
    name = f"{base}_resume{max(attempt(e['name']) for e in listed) + 1}"
    started = sfn.start_execution(stateMachineArn=machine, name=name, input=description["input"])
    return Resumed(month=month, interrupted=newest["name"], execution_name=name, execution_arn=started["executionArn"])
