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

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamflow.reruns import ENDED_UNSUCCESSFULLY
from streamflow.reruns import month_of_execution as month_of

from .config import StackConfig
from .persistence import INTERRUPTED_ERROR
from .stack_client import _client, state_machine_arn

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
        again = "; to run it again, upload it again" if description["status"] in ENDED_UNSUCCESSFULLY else ""
        raise NothingToResume(f"{month}: its newest execution {newest['name']} ended {description['status']}, "
                              f"it was not interrupted; nothing to resume{again}")
    base = original_name(newest["name"])
    name = f"{base}_resume{max(attempt(e['name']) for e in listed) + 1}"
    execution_input = with_files_key(description["input"], lambda m, e, files: _put_verified(config, m, e, files))
    started = sfn.start_execution(stateMachineArn=machine, name=name, input=execution_input)
    return Resumed(month=month, interrupted=newest["name"], execution_name=name, execution_arn=started["executionArn"])


def with_files_key(execution_input: str, put_verified: Callable[[str, str, dict[str, str]], str]) -> str:
    """The input to resume with. One written before ingest kept the verified digests in S3
    carries them inline (``files``) and no ``files_key``, which ShardMonth now reads: the
    digests are written where ingest writes them (``put_verified(month, execution, files)``
    → key) and the key replaces them. Any other input is returned as it was."""
    data = json.loads(execution_input)
    if "files_key" in data or "files" not in data:
        return execution_input
    files = data.pop("files") or {}
    return json.dumps({**data, "files_key": put_verified(data["month"], data["execution"], files)})


def _put_verified(config: StackConfig, month: str, execution: str, files: dict[str, str]) -> str:
    from streamflow.checksums import verified_document, verified_key

    from .stack_client import data_bucket

    key = verified_key(month, execution)
    _client(config, "s3").put_object(Bucket=data_bucket(config), Key=key, Body=verified_document(files),
                                     ContentType="application/json")
    return key
