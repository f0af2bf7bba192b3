"""Clients the integration tests use to look at the stack from outside, as a user would."""

from __future__ import annotations

import json
import time

import boto3
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

MODEL = "streamflow_churn"
# What Ingest logs for a manifest whose execution already exists (functions/ingest/app.py).
DUPLICATE_UPLOAD = "duplicate upload, execution exists"


def aws(stack, service: str):
    """A boto3 client for the stack's AWS endpoint."""
    return boto3.client(service, endpoint_url=stack.aws_endpoint, region_name=stack.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def registry(stack) -> MlflowClient:
    return MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)


def no_such_alias(exc: MlflowException) -> bool:
    """MLflow's answer for an alias (or a model) that does not exist, and nothing else: the
    server says RESOURCE_DOES_NOT_EXIST for an unknown model and INVALID_PARAMETER_VALUE
    "... alias ... not found" for an unknown alias of a known one."""
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    return exc.error_code == "INVALID_PARAMETER_VALUE" and "alias" in exc.message and "not found" in exc.message


def alias(stack, name: str) -> str | None:
    """The version an alias of the model names, or None when there is no such alias.

    Any other failure (registry down, a refused request) raises: ``alias(...) is None`` must
    mean "no such alias", never "the registry call failed"."""
    try:
        return registry(stack).get_model_version_by_alias(MODEL, name).version
    except MlflowException as exc:
        if no_such_alias(exc):
            return None
        raise


def wait_for_ingest_log(stack, month: str, message: str, count: int, timeout: float = 120) -> list[dict]:
    """Poll the functions' logs until Ingest has logged ``message`` for ``month`` at least
    ``count`` times; those records. Fails after ``timeout``.

    Ingest logs once per manifest event, after it has asked Step Functions for the
    execution: once it has logged an upload, that upload's execution would exist.
    """
    from streamflow_local.stack_client import grep_logs

    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in grep_logs(stack, (message,)) if r.get("month") == month]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"Ingest logged {message!r} for {month} {len(found)} times, expected {count}")
        time.sleep(0.25)


def wait_for_json(stack, key: str, timeout: float = 120) -> dict:
    """Poll the data bucket until ``key`` exists; its JSON body. Fails after ``timeout``."""
    from streamflow_local.stack_client import data_bucket

    s3 = aws(stack, "s3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(s3.get_object(Bucket=data_bucket(stack), Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            time.sleep(0.5)
    raise AssertionError(f"s3://{data_bucket(stack)}/{key} never appeared")


def wait_for_rejection(stack, month: str, timeout: float = 120) -> tuple[str, dict]:
    """Poll the data bucket until ``month`` has a rejection report: (its newest report's key,
    the report). Each rejection has its own ``quarantine/<month>/<attempt>/`` folder."""
    from streamflow.quarantine import newest_report_keys, quarantine_prefix
    from streamflow_local.stack_client import data_bucket

    s3, bucket = aws(stack, "s3"), data_bucket(stack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=quarantine_prefix(month))
        key = newest_report_keys(item["Key"] for page in pages for item in page.get("Contents", [])).get(month)
        if key is not None:
            return key, json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        time.sleep(0.5)
    raise AssertionError(f"s3://{bucket}/{quarantine_prefix(month)} has no rejection report")


def monitoring_entry(stack, month: str) -> dict[str, str]:
    """The month's entry in the stack's Evidently workspace (its metadata), {} if none."""
    from streamflow import monitoring
    from streamflow_local.stack_client import data_bucket

    stack.apply_client_env()  # s3fs finds the endpoint in the environment, as the CLI sets it
    state = monitoring._state(monitoring.workspace_uri(data_bucket(stack)))
    try:
        return dict(state.read_snapshot(monitoring.project_id(), monitoring.snapshot_id(month)).metadata)
    except FileNotFoundError:
        return {}
