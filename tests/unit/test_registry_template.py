"""template.yaml's registry: SageMaker's managed MLflow when ``MlflowTrackingUri`` is empty,
the given server otherwise (the local stack gives its own, so nothing of SageMaker deploys)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamflow_local.template import Stack, load_template

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ("RegistryServer", "RegistryRole", "RegistryArtifactBucket", "RegistryArtifactBucketPolicy")
# The functions whose steps call the registry (steps.registry_call), and what each does with model files.
TALKERS = {"DriftFunction": set(), "TrainFunction": {"s3:GetObject", "s3:PutObject"},
           "CompareFunction": {"s3:GetObject"}, "PromoteFunction": {"s3:GetObject"},
           "ApprovalFunction": set(), "RejectionFunction": set()}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT / "template.yaml")


def _stack(template: dict, uri: str) -> Stack:
    return Stack(template, name="sf", region="us-east-1", parameter_overrides={"MlflowTrackingUri": uri})


def test_a_given_uri_deploys_no_registry_and_every_function_uses_the_uri(template):
    stack = _stack(template, "http://127.0.0.1:5000")
    assert not set(REGISTRY) & set(stack.resources)
    assert "RegistryTrackingServerArn" not in stack.template["Outputs"]
    for logical in stack.of_type("AWS::Serverless::Function"):
        props = stack.function_properties(logical)
        assert stack.resolve(props["Environment"])["Variables"]["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
        assert not any("sagemaker-mlflow" in str(p) for p in stack.resolve(props.get("Policies", []))), logical


def test_an_empty_uri_provisions_sagemaker_mlflow_with_a_private_tls_only_bucket(template):
    stack = _stack(template, "")
    assert set(REGISTRY) <= set(stack.resources)
    assert template["Conditions"]["CreateRegistry"] == {"Fn::Equals": [{"Ref": "MlflowTrackingUri"}, ""]}
    server = stack.resources["RegistryServer"]["Properties"]
    assert server["RoleArn"] == {"Fn::GetAtt": ["RegistryRole", "Arn"]}
    assert server["AutomaticModelRegistration"] is False
    bucket = stack.resources["RegistryArtifactBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    deny = stack.resources["RegistryArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    role = stack.resources["RegistryRole"]["Properties"]
    actions = {a for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert actions == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketLocation"}


def test_only_the_functions_that_call_the_registry_may_reach_it(template):
    stack = _stack(template, "")
    for logical in stack.of_type("AWS::Serverless::Function"):
        policies = stack.resources[logical]["Properties"].get("Policies", [])
        chosen = [p["Fn::If"][1] for p in policies if isinstance(p, dict) and "Fn::If" in p]
        if logical not in TALKERS:
            assert chosen == [], logical  # the API serves from S3: no registry, no credentials
            continue
        (policy,) = chosen
        statements = policy["Statement"]
        assert statements[0]["Action"] == "sagemaker-mlflow:*"
        assert statements[0]["Resource"] == {"Fn::GetAtt": ["RegistryServer", "TrackingServerArn"]}
        assert {a for s in statements[1:] for a in s["Action"]} == TALKERS[logical], logical


def test_the_local_deploy_refuses_an_empty_registry_uri_saying_why(tmp_path):
    from streamflow_local.config import StackConfig
    from streamflow_local.deploy import LocalDeployer

    with pytest.raises(ValueError, match="give the local deploy a registry URI"):
        LocalDeployer(StackConfig(state_dir=tmp_path), {"MlflowTrackingUri": ""})
