"""Helpers for the time-order tests: switch ReferenceMonth in the running stack, read what a
month decided."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager

from clients import aws
from streamflow_local.stack_client import function_environment


def reference_mode(stack, mode: str) -> AbstractContextManager[None]:
    """ReferenceMonth = ``mode`` for the uploads in the block (the ingest function passes it
    to each execution), restored afterwards — a configuration update, as an operator's
    `sam deploy --parameter-overrides ReferenceMonth=…` would make."""
    return function_environment(stack, f"{stack.stack_name}-ingest", REFERENCE_MONTH=mode)


def step_output(stack, execution_arn: str, state: str) -> dict | None:
    """The output of the last ``state`` the execution left (None if it never did)."""
    events = aws(stack, "stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    found = [json.loads(e["stateExitedEventDetails"]["output"]) for e in events
             if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == state]
    return found[-1] if found else None
