"""Conditions, ``Fn::If`` and ``AWS::NoValue`` in the local reading of template.yaml: a
resource whose condition is false is not deployed (as CloudFormation leaves it out), and
``Fn::If`` picks the branch its condition names."""

from __future__ import annotations

import copy
import json

import pytest
from streamflow_local.template import Stack

TEMPLATE = {
    "Parameters": {"RegistryUri": {"Type": "String", "Default": ""}, "Size": {"Type": "String", "Default": "Small"}},
    "Conditions": {
        "CreateRegistry": {"Fn::Equals": [{"Ref": "RegistryUri"}, ""]},
        "UseGivenRegistry": {"Fn::Not": [{"Condition": "CreateRegistry"}]},
        "SmallAndCreated": {"Fn::And": [{"Condition": "CreateRegistry"}, {"Fn::Equals": ["Small", {"Ref": "Size"}]}]},
        "Either": {"Fn::Or": [{"Condition": "UseGivenRegistry"}, {"Condition": "SmallAndCreated"}]},
    },
    "Globals": {"Function": {"Environment": {"Variables": {
        "URI": {"Fn::If": ["CreateRegistry", {"Fn::GetAtt": ["Registry", "TrackingServerArn"]},
                           {"Ref": "RegistryUri"}]}}}}},
    "Resources": {
        "Registry": {"Type": "AWS::SageMaker::MlflowTrackingServer", "Condition": "CreateRegistry",
                     "Properties": {"TrackingServerName": {"Fn::Sub": "${AWS::StackName}-mlflow"}}},
        "Worker": {"Type": "AWS::Serverless::Function", "Properties": {
            "FunctionName": {"Fn::Sub": "${AWS::StackName}-worker"},
            "Policies": [{"Ref": "AWS::NoValue"},
                         {"Fn::If": ["CreateRegistry", {"Statement": [{"Effect": "Allow"}]}, {"Ref": "AWS::NoValue"}]}],
            "Tags": {"registry": {"Fn::If": ["UseGivenRegistry", {"Ref": "RegistryUri"}, {"Ref": "AWS::NoValue"}]}},
        }},
    },
    "Outputs": {"RegistryArn": {"Condition": "CreateRegistry", "Value": {"Fn::GetAtt": ["Registry", "TrackingServerArn"]}},
                "Worker": {"Value": {"Ref": "Worker"}}},
}


def _stack(**overrides: str) -> Stack:
    return Stack(copy.deepcopy(TEMPLATE), name="sf", region="us-east-1", parameter_overrides=overrides)


def test_a_given_uri_switches_the_registry_off_and_if_picks_the_uri():
    stack = _stack(RegistryUri="http://127.0.0.1:5000")
    assert stack.conditions == {"CreateRegistry": False, "UseGivenRegistry": True, "SmallAndCreated": False,
                                "Either": True}
    assert stack.of_type("AWS::SageMaker::MlflowTrackingServer") == []
    assert "Registry" not in stack.resources and list(stack.template["Outputs"]) == ["Worker"]
    env = stack.resolve(stack.function_properties("Worker")["Environment"])
    assert env == {"Variables": {"URI": "http://127.0.0.1:5000"}}
    props = stack.resolve(stack.resources["Worker"]["Properties"])
    assert props["Policies"] == [] and props["Tags"] == {"registry": "http://127.0.0.1:5000"}


def test_an_empty_uri_keeps_the_conditional_resource():
    stack = _stack()
    assert stack.conditions["CreateRegistry"] and stack.conditions["SmallAndCreated"] and stack.conditions["Either"]
    assert stack.of_type("AWS::SageMaker::MlflowTrackingServer") == ["Registry"]
    props = stack.resolve(stack.resources["Worker"]["Properties"])
    assert props["Policies"] == [{"Statement": [{"Effect": "Allow"}]}] and props["Tags"] == {}
    env = stack.resolve(stack.function_properties("Worker")["Environment"])  # named, not deployed
    assert env == {"Variables": {"URI": "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/sf-mlflow"}}


def test_the_given_template_is_not_changed():
    before = json.dumps(TEMPLATE, sort_keys=True)
    _stack(RegistryUri="x")
    assert json.dumps(TEMPLATE, sort_keys=True) == before


@pytest.mark.parametrize("conditions, message", [
    ({"A": {"Condition": "A"}}, "refers to itself"),
    ({"A": {"Condition": "B"}}, "unknown condition"),
    ({"A": {"Fn::Contains": [["x"], "x"]}}, "not supported"),
    ({"A": "yes"}, "not a condition"),
])
def test_bad_conditions_are_errors(conditions, message):
    with pytest.raises(ValueError, match=message):
        Stack({"Conditions": conditions, "Resources": {}}, name="sf", region="us-east-1")


def test_no_value_where_a_value_is_required_is_an_error():
    with pytest.raises(ValueError, match="AWS::NoValue"):
        _stack().resolve({"Ref": "AWS::NoValue"})
