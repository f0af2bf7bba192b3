"""`make demo` twice on one stack: the second run ran nothing, and must say so.

The demo runs on a stack of its own (it starts, deploys and stops it, as on a user's
laptop): the first run leaves it up (`--keep`), the second finds it running with both
months already processed by the same data, so it shows their recorded executions.
No figure either run prints may be smaller than the execution it is about took.
"""

from __future__ import annotations

import re

import pytest

from external import EXTERNAL
from streamflow_local.config import StackConfig
from streamflow_local.demo import run_demo
from streamflow_local.stack_client import _client, recorded_seconds, state_machine_arn
from streamflow_local.stack import down

pytestmark = [pytest.mark.integration, pytest.mark.skipif(EXTERNAL, reason="starts a local stack of its own")]

USERS = 1500


def _recorded_durations(config: StackConfig) -> dict[str, float]:
    """Each month's execution → its duration from Step Functions' own start and stop dates."""
    sfn = _client(config, "stepfunctions")
    durations = {}
    for execution in sfn.list_executions(stateMachineArn=state_machine_arn(config))["executions"]:
        description = sfn.describe_execution(executionArn=execution["executionArn"])
        durations[execution["name"].split("-", 1)[0]] = recorded_seconds(description)
    return durations


def _figure(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return float(match.group(1))


def test_a_second_demo_shows_recorded_runs_and_never_a_smaller_time(tmp_path, capsys):
    config = StackConfig.on_spare_ports(state_dir=tmp_path / "stack", stack_name="sfdemo")
    try:
        assert run_demo(config, users=USERS, keep=True) == 0
        first = capsys.readouterr().out
        assert run_demo(config, users=USERS) == 0
        second = capsys.readouterr().out
        durations = _recorded_durations(config)
    finally:
        down(config)

    # The first run did the work and timed it from before the upload.
    assert "1/6 starting the local stack" in first and "already processed" not in first
    assert _figure(r"champion: version \d+ \(([\d.]+) s\)", first) >= durations["month_000"]
    assert _figure(r"upload → \[SUMMARY\]: ([\d.]+) s", first) >= durations["month_001"]
    assert "[SUMMARY] month=month_001" in first
    assert "local stack left running (--keep)" in first

    # The second found the stack up and both months processed: it says so, uploads nothing,
    # and quotes each execution's recorded duration (printed to 0.1 s).
    assert "1/6 the local stack is already running" in second
    for month in ("month_000", "month_001"):
        assert re.search(rf"{month} was already processed by execution {month}-[0-9a-f]{{16}} at "
                         r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", second), second
    assert second.count("nothing uploaded, nothing run now") == 2
    assert "upload → [SUMMARY]" not in second and "uploaded month_" not in second
    took = [float(x) for x in re.findall(r"recorded execution took ([\d.]+) s", second)]
    assert len(took) == 2
    for printed, month in zip(took, ("month_000", "month_001")):
        assert printed >= round(durations[month], 1) - 1e-9, (printed, durations[month])
    assert "[SUMMARY] month=month_001" in second  # the recorded run's log lines, shown again
    assert "local stack left running: it was already up before the demo started" in second
