"""A client cached for the life of a process follows AWS_ENDPOINT_URL: a process that points
the variable at another endpoint (the CLI after a test's moto server stopped) gets a client of
that endpoint, and the same endpoint keeps its one client (a warm Lambda's connection pool)."""

from __future__ import annotations

import boto3
import pytest
from aws_endpoint import endpoint_env, moto_endpoint

from streamflow import online_store, storage


@pytest.fixture
def env(monkeypatch):
    for key, value in endpoint_env("http://unused").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    return monkeypatch


def test_a_stopped_endpoint_does_not_outlive_its_s3_client(env):
    with moto_endpoint() as first:
        env.setenv("AWS_ENDPOINT_URL", first)
        client = storage.s3()
        assert storage.s3() is client  # one client per endpoint, reused
        assert client.meta.endpoint_url == first
    with moto_endpoint() as second:  # the first server is gone
        env.setenv("AWS_ENDPOINT_URL", second)
        boto3.client("s3").create_bucket(Bucket="after-restart")
        storage.put_bytes("after-restart", "key", b"body")
        assert storage.get_bytes("after-restart", "key") == b"body"
        assert storage.s3().meta.endpoint_url == second


def test_the_dynamodb_client_follows_the_endpoint(env):
    env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    on_first = online_store._client()
    env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    assert online_store._client() is not on_first
    assert online_store._client().meta.endpoint_url == "http://127.0.0.1:2"
    env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert online_store._client() is on_first


def test_the_dynamodb_client_sends_one_fixed_user_agent(env):
    """Every call sends the same fixed header, built once (botocore builds its default one
    twice per call); it names the SDK and carries no ``region/`` (which would send the
    emulator's GetItem fast path back to moto)."""
    import botocore

    env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:3")
    client = online_store._client()
    sent: list[str] = []

    def capture(request, **_):
        sent.append(request.headers["User-Agent"].decode() if isinstance(request.headers["User-Agent"], bytes)
                    else request.headers["User-Agent"])
        raise RuntimeError("captured")  # stop before the socket

    client.meta.events.register_first("before-send.dynamodb", capture)
    try:
        for _ in range(2):
            with pytest.raises(RuntimeError, match="captured"):
                client.get_item(TableName="t", Key={"user_id": {"S": "u1"}})
    finally:
        client.meta.events.unregister("before-send.dynamodb", capture)
    assert sent[0] == sent[1]
    assert sent[0].startswith("streamflow-online-store ")
    assert f"Botocore/{botocore.__version__}" in sent[0]
    assert "region/" not in sent[0]
