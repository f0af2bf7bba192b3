"""Which execution an upload of a month's manifest belongs to.

An execution is named after the month and its manifest's content (``ingest.execution_name``),
so a repeated upload event finds the execution it already started instead of running the
loop twice. Step Functions keeps a closed execution's name, though: a month whose execution
failed (was aborted, timed out) and is uploaded again unchanged, once its cause is mended,
would find that failed execution and its files would stay in ``months/<month>/`` with
neither an execution nor a quarantine. Such an upload runs the month again, as the next
attempt (``<name>-r2``, ``-r3``, …)."""

from __future__ import annotations

from collections.abc import Callable

ENDED_UNSUCCESSFULLY = frozenset({"FAILED", "ABORTED", "TIMED_OUT"})
MAX_ATTEMPTS = 100  # a month failing this often has a cause that another upload will not mend


def attempt_name(name: str, attempt: int) -> str:
    return name if attempt == 1 else f"{name}-r{attempt}"


def execution_for(name: str, status_of: Callable[[str], str | None]) -> tuple[str, str | None]:
    """(the name of the execution this upload belongs to, that execution's status, None if it
    is not started yet): the first attempt that has not ended unsuccessfully. ``status_of``
    gives an execution's status by name, None if there is none."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        candidate = attempt_name(name, attempt)
        status = status_of(candidate)
        if status not in ENDED_UNSUCCESSFULLY:
            return candidate, status
    raise RuntimeError(f"{name} ended unsuccessfully {MAX_ATTEMPTS} times; not started again")


def statuses(sfn, state_machine_arn: str) -> Callable[[str], str | None]:
    """``status_of`` for ``execution_for``: DescribeExecution of the state machine's execution by name."""
    prefix = state_machine_arn.replace(":stateMachine:", ":execution:") + ":"

    def status_of(name: str) -> str | None:
        try:
            return str(sfn.describe_execution(executionArn=prefix + name)["status"])
        except sfn.exceptions.ExecutionDoesNotExist:
            return None

    return status_of
