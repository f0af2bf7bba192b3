"""Clients the integration tests use to look at the stack from outside, as a user would."""

from __future__ import annotations

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
