"""The command line's client of a deployed stack: seed, upload, wait, read logs, predict.

Everything goes through public APIs (S3, Step Functions, HTTP), as a user's script would.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from boto3.s3.transfer import TransferConfig

from streamflow.generator import DEFAULT_SEED, DEFAULT_USERS, write_month
from streamflow.ingest import execution_name
from streamflow.schema import MANIFEST_NAME, MONTH_FILES, MONTH_PATTERN, month_name

from .config import StackConfig

SINGLE_PUT = TransferConfig(multipart_threshold=512 * 1024 * 1024)
GREP_PREFIXES = ("RETRAINING_TRIGGERED", "[COMPARE]", "[SUMMARY]")
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class NotDeployed(RuntimeError):
    pass


def stack_description(config: StackConfig) -> dict[str, Any]:
    try:
        return json.loads(config.stack_file.read_text())
    except OSError as exc:
        raise NotDeployed("the stack is not deployed: run `streamflow up` then `streamflow deploy`") from exc


def _client(config: StackConfig, service: str):
    return boto3.client(service, endpoint_url=config.aws_endpoint, region_name=config.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@contextmanager
def function_environment(config: StackConfig, function: str, **changes: str) -> Iterator[None]:
    """The deployed ``function``'s environment with ``changes`` for the block, restored after:
    a configuration update, as a redeploy with other parameters makes (Lambda, and the local
    executor, start new execution environments on it)."""
    lam = _client(config, "lambda")
    variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": {**variables, **changes}})
    try:
        yield
    finally:
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})


def function_name(description: dict[str, Any], logical: str) -> str:
    """A deployed function's name: the local deploy records ``{"name": ...}`` per logical id,
    ``streamflow attach`` CloudFormation's physical id (a name, or an ARN on some endpoints)."""
    value = description["functions"][logical]
    return str(value if isinstance(value, str) else value["name"]).rsplit(":", 1)[-1]


def stack_settings(config: StackConfig):
    """The pipeline's Settings as the deployed Promote function sees them (for CLI operations
    that act like the pipeline: rollback, approve, reject): read from its configuration in
    Lambda, so the template stays the one source of the loop's policy."""
    from streamflow.settings import Settings

    description = stack_description(config)
    config.apply_client_env()
    function = function_name(description, "PromoteFunction")
    variables = _client(config, "lambda").get_function_configuration(FunctionName=function)
    settings = Settings.from_env(variables.get("Environment", {}).get("Variables", {}))
    outputs = description["outputs"]
    return dataclasses.replace(settings, mlflow_tracking_uri=config.mlflow_uri,
                               state_machine_arn=outputs["StateMachineArn"])


def data_bucket(config: StackConfig) -> str:
    return stack_description(config)["outputs"]["DataBucketName"]


def state_machine_arn(config: StackConfig) -> str:
    return stack_description(config)["outputs"]["StateMachineArn"]


def seed(out_dir: Path, months: int = 3, n_users: int = DEFAULT_USERS, seed_value: int = DEFAULT_SEED,
         parts: int | None = None) -> list[Path]:
    """Generate ``month_000`` … into ``out_dir``; returns the month folders. With ``parts``,
    each table is written as that many parts (``users/part-00000.csv`` …), a block of users
    at a time, so a month of any size is written in bounded memory."""
    if parts is not None:
        from streamflow.partitioned_month import write_partitioned_month

        return [write_partitioned_month(out_dir, m, n_users=n_users, parts=parts, seed=seed_value)
                for m in range(months)]
    return [write_month(out_dir, m, n_users=n_users, seed=seed_value) for m in range(months)]


@dataclass(frozen=True)
class Upload:
    month: str
    execution_name: str
    execution_arn: str
    seconds: float


UPLOAD_THREADS = 8  # parts of a partitioned month go up this many at a time


def upload_month(config: StackConfig, folder: Path, progress: Callable[[str], None] | None = None,
                 threads: int = UPLOAD_THREADS) -> Upload:
    """PUT the month's files under ``months/<month>/`` (a partitioned table's parts under
    its folder, several at a time), then its manifest last, once every file is in."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from streamflow.manifest import month_files_in

    folder = Path(folder)
    month = folder.name
    if not MONTH_PATTERN.match(month):
        raise ValueError(f"{folder}: the folder name must be the month (month_NNN)")
    manifest = folder / MANIFEST_NAME
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} is missing: a month is uploaded with its manifest")
    s3 = _client(config, "s3")
    bucket = data_bucket(config)
    started = time.monotonic()
    files = month_files_in(folder)

    def put(name: str, path: Path) -> str:
        # S3 verifies the bytes in transit and keeps the SHA-256, which ingest compares
        # with the manifest's instead of reading the file again. One PUT per file up to
        # 512 MiB (the default MaxFileBytes): a multipart upload's SHA-256 is of its parts.
        s3.upload_file(str(path), bucket, f"months/{month}/{name}", ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                       Config=SINGLE_PUT)
        return name

    if len(files) <= len(MONTH_FILES):  # one file a table: in order, as always
        for name, path in files:
            if progress:
                progress(f"upload {name}")
            put(name, path)
    else:
        total = sum(path.stat().st_size for _, path in files)
        sent = 0
        sizes = dict(files)
        with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="upload") as pool:
            pending = [pool.submit(put, name, path) for name, path in files]
            for done, future in enumerate(as_completed(pending), start=1):
                name = future.result()  # the first failure stops the upload before the manifest
                sent += sizes[name].stat().st_size
                if progress:
                    progress(f"upload {name} ({done}/{len(files)} files, {sent / 1e6:.1f}/{total / 1e6:.1f} MB)")
    body = manifest.read_bytes()
    name, _ = _execution_for_upload(config, month, body)  # before the manifest lands and ingest starts it
    if progress:
        progress(f"upload {MANIFEST_NAME}")
    s3.put_object(Bucket=bucket, Key=f"months/{month}/{MANIFEST_NAME}", Body=body, ChecksumAlgorithm="SHA256")
    return Upload(month=month, execution_name=name, execution_arn=execution_arn_for(config, name),
                  seconds=time.monotonic() - started)


def execution_arn_for(config: StackConfig, name: str) -> str:
    """The ARN an execution of the stack's state machine gets for ``name``."""
    return state_machine_arn(config).replace(":stateMachine:", ":execution:") + f":{name}"


def _execution_for_upload(config: StackConfig, month: str, manifest_body: bytes) -> tuple[str, str | None]:
    """(the name of the execution an upload of this manifest belongs to, its status or None),
    as ingest decides it (``streamflow.reruns``)."""
    from streamflow.reruns import content_executions, execution_for

    name = execution_name(month, manifest_body)
    return execution_for(name, content_executions(_client(config, "stepfunctions"), state_machine_arn(config), name))


def recorded_execution(config: StackConfig, folder: Path) -> dict[str, Any] | None:
    """The execution that this month's manifest already started and that is running or
    succeeded, or None.

    Ingest names an execution after the month and its manifest's content, so uploading the
    same files again finds that execution instead of running the loop: a caller asks first,
    and shows the recorded run rather than timing work that will not happen. One that failed
    (was aborted, timed out) is not recorded: uploading the month again runs it again."""
    manifest = Path(folder) / MANIFEST_NAME
    if not MONTH_PATTERN.match(manifest.parent.name) or not manifest.is_file():
        return None  # not an uploadable month: upload_month says why
    name, status = _execution_for_upload(config, manifest.parent.name, manifest.read_bytes())
    if status is None:
        return None
    return _client(config, "stepfunctions").describe_execution(executionArn=execution_arn_for(config, name))


def recorded_seconds(description: dict[str, Any]) -> float | None:
    """An execution's duration from its own start and stop dates (None while it runs)."""
    stopped = description.get("stopDate")
    return None if stopped is None else (stopped - description["startDate"]).total_seconds()


def execution_history(config: StackConfig, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution, oldest first: AWS answers at most 1,000 a call."""
    pages = _client(config, "stepfunctions").get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, maxResults=1000)
    return [event for page in pages for event in page["events"]]


def execution_steps(config: StackConfig, execution_arn: str) -> list[dict[str, Any]]:
    """Each state the execution entered, in order, with its duration and outcome so far.

    States in a Parallel's branches run at the same time, so an exit is matched to the
    entry of the same name, a failure to the newest task still running, and a failed map
    run to the newest Map state still running (a caught Map failure is FAILED, not DONE).
    Once the execution has ended no step is RUNNING (``outcome.settle_steps``)."""
    from .outcome import settle_steps

    events = execution_history(config, execution_arn)
    steps: list[dict[str, Any]] = []
    failed_runs: list[dict[str, Any]] = []  # Map steps a MapRunFailed marked, before their MapStateFailed
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            steps.append({"state": event["stateEnteredEventDetails"]["name"], "started": event["timestamp"],
                          "status": "RUNNING", "seconds": None, "parallel": kind.startswith("Parallel"),
                          "fail_state": kind == "FailStateEntered", "map": kind == "MapStateEntered"})
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            step = next((s for s in reversed(steps) if s["state"] == name and s["status"] == "RUNNING"), None)
            if step is not None:
                step["status"] = "DONE"
                step["seconds"] = (event["timestamp"] - step["started"]).total_seconds()
        elif kind in ("MapRunFailed", "MapStateFailed"):
            if kind == "MapStateFailed" and failed_runs:
                failed_runs.pop()  # the state's failure of the run already marked
                continue
            maps = [s for s in steps if s["status"] == "RUNNING" and s["map"]]
            if maps:
                maps[-1]["status"] = "FAILED"
                maps[-1]["seconds"] = (event["timestamp"] - maps[-1]["started"]).total_seconds()
                if kind == "MapRunFailed":
                    failed_runs.append(maps[-1])
        elif kind in ("LambdaFunctionFailed", "LambdaFunctionTimedOut", "ExecutionFailed"):
            running = [s for s in steps if s["status"] == "RUNNING" and not s["parallel"]]
            if running:
                running[-1]["status"] = "FAILED"
    settle_steps(steps, events)
    for step in steps:
        del step["parallel"], step["fail_state"], step["map"]
    return steps


def wait_for_execution(config: StackConfig, execution_arn: str, timeout: float = 600.0,
                       on_step: Callable[[dict[str, Any]], None] | None = None,
                       not_started: Callable[[], dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """Poll until the execution ends; ``on_step`` hears each state (a step of
    ``execution_steps``) as it starts. While the
    execution does not exist, ``not_started`` may end the wait with its answer (a month
    rejected at ingest never gets one).

    The history is read only for ``on_step``: through the emulator it costs ≈ 20 times a
    ``DescribeExecution`` (≈ 44 against 2 ms for a 10k month's 83 events), CPU the
    execution being watched shares."""
    sfn = _client(config, "stepfunctions")
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        try:
            description = sfn.describe_execution(executionArn=execution_arn)
        except sfn.exceptions.ExecutionDoesNotExist:
            description = None
            answer = not_started() if not_started else None
            if answer is not None:
                return answer
        if description is not None and on_step is not None:
            steps = execution_steps(config, execution_arn)
            for step in steps[seen:]:
                on_step(step)
            seen = len(steps)
        if description is not None and description["status"] in TERMINAL:
            return description
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} did not finish in {timeout:.0f} s")
        time.sleep(0.25)


def grep_logs(config: StackConfig, prefixes: tuple[str, ...] = GREP_PREFIXES,
              execution: str | None = None) -> list[dict[str, Any]]:
    """The structured log records whose message starts with one of ``prefixes``."""
    records: list[dict[str, Any]] = []
    for path in sorted(config.logs_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            message = str(record.get("message", ""))
            if message.startswith(prefixes) and (execution is None or record.get("execution") == execution):
                records.append(record)
    records.sort(key=lambda r: str(r.get("timestamp", "")))
    return records


def api_headers(config: StackConfig) -> dict[str, str]:
    """The headers API Gateway wants: the API key when the template requires one."""
    key = stack_description(config).get("api", {}).get("api_key")
    return {"x-api-key": key} if key else {}


def predict(config: StackConfig, user_id: str) -> tuple[int, dict[str, Any]]:
    response = requests.post(f"{config.api_url}/predict", json={"user_id": user_id},
                             headers=api_headers(config), timeout=120)
    return response.status_code, response.json()


def first_user(folder: Path) -> str:
    with open(Path(folder) / "users.csv") as handle:
        handle.readline()
        return handle.readline().split(",", 1)[0]


def month_folder(data_dir: Path, month: int | str) -> Path:
    return Path(data_dir) / (month if isinstance(month, str) else month_name(month))
