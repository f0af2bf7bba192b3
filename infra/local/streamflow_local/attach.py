"""Use a stack that `sam deploy` / `samlocal deploy` created (LocalStack, AWS) instead of the
local emulator: read its CloudFormation description into the same ``stack.json`` the local
deploy step writes, so every `streamflow` command and the integration tests work on it.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from .config import StackConfig


def describe_stack(config: StackConfig, stack_name: str | None = None) -> dict[str, Any]:
    """What the local deploy step records in stack.json, read from CloudFormation."""
    name = stack_name or config.stack_name

    def client(service: str):
        return boto3.client(service, endpoint_url=config.aws_endpoint, region_name=config.region)

    cfn = client("cloudformation")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    resources: dict[str, dict[str, str]] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for resource in page["StackResourceSummaries"]:
            resources.setdefault(resource["ResourceType"], {})[resource["LogicalResourceId"]] = \
                resource["PhysicalResourceId"]
    functions = resources.get("AWS::Lambda::Function", {})
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    api_key = None
    if outputs.get("ApiKeyId"):  # the template requires x-api-key (SAM usage plan)
        api_key = client("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
    return {
        "stack": name,
        "region": config.region,
        "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
        "outputs": outputs,
        "functions": functions,
        "api": {"function": functions.get("ApiFunction", ""), "api_key": api_key,
                "rest_api": next(iter(resources.get("AWS::ApiGateway::RestApi", {}).values()), "")},
        "attached": {"endpoint": config.aws_endpoint},
    }


def localstack_endpoint(localstack_host: str | None = None) -> str:
    """LocalStack's endpoint as LocalStack's own client resolves it: ``AWS_ENDPOINT_URL`` when
    set, else ``LOCALSTACK_HOST`` (``host:port``, default ``localhost:4566``; or the argument),
    over HTTPS when ``USE_SSL`` is set."""
    from localstack_client.config import get_service_endpoint

    return str(get_service_endpoint("cloudformation", localstack_host)).rstrip("/")


def localstack_api_url(config: StackConfig, rest_api: str, stage: str = "Prod") -> str:
    """LocalStack serves a REST API stage under /restapis/<id>/<stage>/_user_request_."""
    return f"{config.aws_endpoint.rstrip('/')}/restapis/{rest_api}/{stage}/_user_request_"


def attach(config: StackConfig, stack_name: str | None = None) -> dict[str, Any]:
    """Write the deployed stack's description to ``config.stack_file``; returns it."""
    description = describe_stack(config, stack_name)
    config.stack_file.parent.mkdir(parents=True, exist_ok=True)
    config.stack_file.write_text(json.dumps(description, indent=2) + "\n")
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    return description
