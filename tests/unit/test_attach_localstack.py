"""``streamflow attach --localstack``: LocalStack's endpoint resolved by localstack-client
(AWS_ENDPOINT_URL, else LOCALSTACK_HOST, USE_SSL), then the stack read from CloudFormation
there. The CloudFormation endpoint here is the emulator's moto server standing in for
LocalStack (both answer the same API on one edge port)."""

from __future__ import annotations

import json

import boto3
import pytest

from aws_endpoint import moto_endpoint
from streamflow_local.attach import localstack_endpoint
from streamflow_local.cli import main

TEMPLATE = {"Resources": {"Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "attach-data"}}},
            "Outputs": {"DataBucketName": {"Value": {"Ref": "Data"}}}}


@pytest.fixture
def clean_env(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "LOCALSTACK_HOST", "USE_SSL", "STREAMFLOW_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_the_default_is_localstacks_edge_port(clean_env):
    assert localstack_endpoint() == "http://localhost:4566"


def test_localstack_host_and_ssl_are_honoured(clean_env):
    clean_env.setenv("LOCALSTACK_HOST", "ls.internal:4599")
    assert localstack_endpoint() == "http://ls.internal:4599"
    clean_env.setenv("USE_SSL", "1")
    assert localstack_endpoint() == "https://ls.internal:4599"
    assert localstack_endpoint("other:1234") == "https://other:1234"


def test_an_explicit_endpoint_wins(clean_env):
    clean_env.setenv("LOCALSTACK_HOST", "ls.internal:4599")
    clean_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4510/")
    assert localstack_endpoint() == "http://127.0.0.1:4510"


def test_attach_localstack_reads_the_stack_at_the_resolved_endpoint(clean_env, tmp_path, capsys):
    with moto_endpoint() as url:
        cfn = boto3.client("cloudformation", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        cfn.create_stack(StackName="attached", TemplateBody=json.dumps(TEMPLATE))
        for key, value in {"STREAMFLOW_STATE_DIR": str(tmp_path), "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            clean_env.setenv(key, value)
        assert main(["attach", "--localstack-host", url.removeprefix("http://"), "--stack-name", "attached"]) == 0
    description = json.loads((tmp_path / "stack.json").read_text())
    assert description["stack"] == "attached" and description["attached"]["endpoint"] == url
    assert description["outputs"] == {"DataBucketName": "attach-data"}
    assert f"attached stack attached at {url}" in capsys.readouterr().out


def test_attach_without_an_endpoint_says_how_to_give_one(clean_env, tmp_path, capsys):
    clean_env.setenv("STREAMFLOW_STATE_DIR", str(tmp_path))
    assert main(["attach"]) == 2
    assert "--localstack" in capsys.readouterr().err
