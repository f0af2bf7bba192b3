"""How a month ended, for `streamflow status` and `upload`: exit code, one-line cause,
ingest rejections, and no step left RUNNING once its execution has ended.

Pure functions over what views.py/stack_client.py read (executions, history events, the month's
``_REJECTION.json``), so each rule is tested without a stack.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from streamflow.causes import one_line

FAILED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
TERMINAL_EVENTS = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED",
                   "ExecutionAborted": "ABORTED", "ExecutionTimedOut": "TIMED_OUT"}
# Choice/Pass states that turn a Lambda error into the Fail cause (pipeline.asl.json), and the
# task that names a failed Map's shards in it: plumbing.
CAUSE_PLUMBING = ("Caught", "ReadCause", "PlainCause", "NoCause", "NameShards")
EXIT_OK, EXIT_FAILED = 0, 1


def settle_steps(steps: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Once the execution has ended nothing in it still runs: a Fail state is FAILED, a
    Parallel that did not exit is FAILED (ABORTED, TIMED_OUT: as the execution), and a
    step of a branch cut short by its sibling's failure is STOPPED."""
    end = next((TERMINAL_EVENTS[e["type"]] for e in reversed(events) if e["type"] in TERMINAL_EVENTS), None)
    for step in steps:
        if step.get("fail_state"):
            step["status"] = "FAILED"
        elif end is not None and step["status"] == "RUNNING":
            if end == "SUCCEEDED":
                step["status"] = "DONE"
            elif step.get("parallel"):
                step["status"] = end
            else:
                step["status"] = "STOPPED"
    return steps


def shown_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps a person reads: the cause-formatting plumbing left out."""
    return [s for s in steps if not (s["state"].endswith(CAUSE_PLUMBING) and s["status"] == "DONE")]


def readable_cause(cause: str | None) -> str:
    """The execution's cause on one line. Causes made by this template already are; a raw
    Lambda error (JSON with a stack trace, from an older template) is cut to its message."""
    text = (cause or "").strip()
    prefix, _, rest = text.partition(": ")
    for candidate, lead in ((text, ""), (rest, prefix + ": ")):
        if candidate.startswith("{"):
            try:
                message = json.loads(candidate).get("errorMessage")
            except (ValueError, AttributeError):
                continue
            if message:
                return one_line(lead + str(message), 300)
    return one_line(text, 300)


def month_outcomes(executions: list[dict[str, Any]], rejections: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each month's latest outcome: its last execution's status, or ``REJECTED`` when an
    ingest rejection is newer than that execution (or there is none)."""
    latest: dict[str, dict[str, Any]] = {}
    for execution in executions:  # oldest first
        latest[execution["month"]] = execution
    outcomes = {month: e["status"] for month, e in latest.items()}
    for month, report in rejections.items():
        if report.get("stage") != "ingest":
            continue
        execution = latest.get(month)
        if execution is None or _when(report.get("rejected_at")) >= _when(execution.get("started")):
            outcomes[month] = "REJECTED"
    return outcomes


def _when(text: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)


def status_exit_code(outcomes: dict[str, str]) -> int:
    """1 when nothing was found, or a month's latest outcome is a failure or a rejection."""
    if not outcomes:
        return EXIT_FAILED
    return EXIT_FAILED if any(o in FAILED_STATUSES or o == "REJECTED" for o in outcomes.values()) else EXIT_OK
