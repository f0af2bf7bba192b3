"""Clients the integration tests use to look at the stack from outside, as a user would."""

from __future__ import annotations

import json
import time

import boto3
from mlflow import MlflowClient

MODEL = "streamflow_churn"


def aws(stack, service: str):
    """A boto3 client for the stack's AWS endpoint."""
    return boto3.client(service, endpoint_url=stack.aws_endpoint, region_name=stack.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def registry(stack) -> MlflowClient:
    return MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)


def alias(stack, name: str) -> str | None:
    """The version an alias of the model names, or None."""
    try:
        return registry(stack).get_model_version_by_alias(MODEL, name).version
    except Exception:
        return None


def wait_for_json(stack, key: str, timeout: float = 120) -> dict:
    """Poll the data bucket until ``key`` exists; its JSON body. Fails after ``timeout``."""
    from streamflow_local.loop import data_bucket

    s3 = aws(stack, "s3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(s3.get_object(Bucket=data_bucket(stack), Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            time.sleep(0.5)
    raise AssertionError(f"s3://{data_bucket(stack)}/{key} never appeared")
