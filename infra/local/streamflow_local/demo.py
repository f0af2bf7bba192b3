"""``make demo``: the whole loop, end to end, on the local stack.

A month whose data this stack already processed is not run again (ingest maps the same
content to the same execution): the demo says so and shows that execution's recorded
result and duration, never a time for work it did not do.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import StackConfig
from .deploy import deploy
from .stack_client import (
    first_user,
    grep_logs,
    predict,
    recorded_execution,
    recorded_seconds,
    seed,
    upload_month,
    wait_for_execution,
)
from .stack import down, running_pid, up


def _say(message: str = "") -> None:
    print(message, flush=True)


@dataclass(frozen=True)
class MonthRun:
    """One month's pass through the pipeline, as the demo reports it."""

    execution: str
    summary: dict[str, Any]
    seconds: float  # upload → [SUMMARY] when run now; the execution's own duration when recorded
    recorded_at: dt.datetime | None = None  # set when an earlier upload ran it: nothing ran now


def _finished(description: dict[str, Any], label: str) -> dict[str, Any]:
    if description["status"] != "SUCCEEDED":
        raise RuntimeError(f"{label}: execution {description['status']}: {description.get('error')}: "
                           f"{description.get('cause')}")
    return json.loads(description["output"])


def _recorded_run(config: StackConfig, description: dict[str, Any], label: str) -> MonthRun:
    """Show an execution an earlier upload of the same data started, with its recorded timings."""
    started: dt.datetime = description["startDate"]
    _say(f"  {label} was already processed by execution {description['name']} at "
         f"{started.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC (same data, so the same execution); "
         "showing its result: nothing uploaded, nothing run now")

    def on_step(step: dict[str, Any]) -> None:
        offset = (step["started"] - started).total_seconds()
        _say(f"  [{offset:6.1f}s recorded] {label} → {step['state']}")

    description = wait_for_execution(config, description["executionArn"], on_step=on_step)
    seconds = recorded_seconds(description)
    return MonthRun(description["name"], _finished(description, label), seconds or 0.0, started)


def _run_month(config: StackConfig, folder: Path, label: str) -> MonthRun:
    recorded = recorded_execution(config, folder)
    if recorded is not None:
        return _recorded_run(config, recorded, label)
    started = time.monotonic()
    upload = upload_month(config, folder)
    _say(f"  uploaded {upload.month} ({upload.seconds:.1f} s); execution {upload.execution_name}")

    def on_step(step: dict[str, Any]) -> None:
        _say(f"  [{time.monotonic() - started:6.1f}s] {label} → {step['state']}")

    description = wait_for_execution(config, upload.execution_arn, on_step=on_step)
    return MonthRun(upload.execution_name, _finished(description, label), time.monotonic() - started)


def _took(run: MonthRun) -> str:
    if run.recorded_at is None:
        return f"{run.seconds:.1f} s"
    return (f"not run now; its recorded execution took {run.seconds:.1f} s, "
            f"started {run.recorded_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC")


def run_demo(config: StackConfig, users: int = 10_000, keep: bool = False) -> int:
    started_here = running_pid(config) is None
    t0 = time.monotonic()
    try:
        _say("1/6 starting the local stack (moto + local Lambda executor, MLflow server, API gateway)"
             if started_here else "1/6 the local stack is already running: using it")
        up(config)
        _say(f"    AWS {config.aws_endpoint}   MLflow {config.mlflow_uri}   API {config.api_url}")
        _say("2/6 deploying template.yaml into it")
        description = deploy(config)
        _say(f"    bucket {description['outputs']['DataBucketName']}, "
             f"state machine {description['outputs']['StateMachineArn'].rsplit(':', 1)[-1]}, "
             f"{len(description['functions'])} functions")
        _say(f"3/6 generating months month_000..month_002 ({users:,} users each)")
        folders = seed(config.state_dir / "data", months=3, n_users=users)
        _say("4/6 first champion: month_000 through the pipeline (no champion yet → train → promote)")
        first = _run_month(config, folders[0], "month_000")
        _say(f"    champion: version {first.summary['production_version']} ({_took(first)})")
        _say("5/6 month_001 lands: upload → drift → retrain → compare → promote?")
        second = _run_month(config, folders[1], "month_001")
        _say()
        lines = grep_logs(config, execution=second.execution)
        for record in lines:
            _say(record["message"])
        if not lines:
            _say(f"(no log lines of execution {second.execution} in {config.logs_dir})")
        _say()
        _say(f"drift report: s3://{description['outputs']['DataBucketName']}/{second.summary['report_key']}")
        _say(f"upload → [SUMMARY]: {_took(second)}" if second.recorded_at is None else f"month_001: {_took(second)}")
        if first.recorded_at or second.recorded_at:
            _say("    (this stack had already processed these months; `streamflow reset` empties it "
                 "so the demo runs the loop again)")
        user_id = first_user(folders[1])
        _say(f"6/6 POST {config.api_url}/predict {{\"user_id\": \"{user_id}\"}}")
        status, body = predict(config, user_id)
        _say(f"    HTTP {status} {json.dumps(body)}")
        _say()
        _say(f"demo done in {time.monotonic() - t0:.0f} s; MLflow UI: {config.mlflow_uri}")
        return 0 if status == 200 else 1
    finally:
        if not started_here:
            _say("local stack left running: it was already up before the demo started. "
                 "Stop it with `streamflow down`.")
        elif keep:
            _say("local stack left running (--keep). Stop it with `streamflow down`.")
        else:
            down(config)
            _say("local stack stopped (the demo started it). Keep it up with `make demo KEEP=1` "
                 "(or `streamflow demo --keep`, `streamflow up --deploy`); stop it with `streamflow down`.")
