"""Helpers for the time-order tests: switch ReferenceMonth in the running stack, read what a
month decided."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from clients import aws


@contextmanager
def reference_mode(stack, mode: str) -> Iterator[None]:
    """ReferenceMonth = ``mode`` for the uploads in the block (the ingest function passes it
    to each execution), restored afterwards — a configuration update, as an operator's
    `sam deploy --parameter-overrides ReferenceMonth=…` would make."""
    lam = aws(stack, "lambda")
    name = f"{stack.stack_name}-ingest"
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {**variables,
                                                                                      "REFERENCE_MONTH": mode}})
    try:
        yield
    finally:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})


def step_output(stack, execution_arn: str, state: str) -> dict | None:
    """The output of the last ``state`` the execution left (None if it never did)."""
    events = aws(stack, "stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    found = [json.loads(e["stateExitedEventDetails"]["output"]) for e in events
             if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == state]
    return found[-1] if found else None
