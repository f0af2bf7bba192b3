"""A real AWS endpoint for unit tests of the core's DynamoDB code: the emulator's moto
server (behind waitress, with the stack's patches) on a spare port, as in
test_local_servers.py. boto3 finds it through the standard environment variables."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from streamflow_local.config import free_port


@contextmanager
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server that runs for the block."""
    from streamflow_local import moto_patches
    from streamflow_local.moto_server import MotoServer

    moto_patches.install()
    port = free_port()
    server = MotoServer("127.0.0.1", port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def endpoint_env(endpoint: str) -> dict[str, str]:
    """What a Lambda sees: the endpoint, a region and (dummy) credentials."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@contextmanager
def state_machines_endpoint() -> Iterator[tuple[str, Any]]:
    """``moto_endpoint`` with moto's Step Functions interpreter on (executions run, as in the
    stack); (its URL, a Step Functions client of it)."""
    import requests

    with moto_endpoint() as url:
        requests.post(f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                      timeout=10).raise_for_status()
        yield url, boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1",
                                aws_access_key_id="testing", aws_secret_access_key="testing")


@contextmanager
def moto_endpoint_in_env() -> Iterator[str]:
    """A moto server, with this process's environment pointing at it (as a Lambda's would)
    while the block runs; the environment is restored afterwards."""
    import pytest

    with moto_endpoint() as url, pytest.MonkeyPatch.context() as env:
        for key, value in endpoint_env(url).items():
            env.setenv(key, value)
        yield url


@contextmanager
def s3_bucket_in_env(bucket: str) -> Iterator[Any]:
    """``moto_endpoint_in_env`` with ``bucket`` made; an S3 client of it. The core's cached S3
    client is dropped before and after: it keeps the endpoint it was made with."""
    from streamflow import storage

    storage.s3.cache_clear()
    try:
        with moto_endpoint_in_env():
            client = boto3.client("s3")
            client.create_bucket(Bucket=bucket)
            yield client
    finally:
        storage.s3.cache_clear()


def create_table(endpoint: str, name: str, key: str, range_key: str | None = None) -> None:
    """An empty PAY_PER_REQUEST table with a string hash key (and a string range key when
    given), as template.yaml declares them.

    moto keeps its state per process, not per server: a table of an earlier server in this
    process (another pytest session, as mutmut runs them) is dropped first."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    if name in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName=name)
    keys = [(key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    dynamodb.create_table(TableName=name, KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
                          AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
                          BillingMode="PAY_PER_REQUEST")


# A DynamoDB request's SigV4 header as boto3 signs it (the emulator's fast paths read the
# region and access key from it; the signature is not checked).
DYNAMODB_AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/dynamodb/aws4_request, "
                 "SignedHeaders=host, Signature=x")


def dynamodb_environ(body: bytes, target: str, auth: str = DYNAMODB_AUTH) -> dict[str, Any]:
    """The WSGI environ of a JSON-protocol DynamoDB request, as the emulator's server builds it."""
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "RAW_URI": "/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "5000", "HTTP_HOST": "127.0.0.1:5000", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/x-amz-json-1.0",
            "HTTP_X_AMZ_TARGET": target, "HTTP_AUTHORIZATION": auth}


def call_wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status, headers, body) of ``app``'s answer; the random request id masked."""
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, headers

    body = b"".join(app(environ, start_response))
    headers = [(k, "<random>" if k.lower() == "x-amzn-requestid" else v) for k, v in seen["headers"]]
    return seen["status"], headers, body
