"""The local reading of template.yaml: intrinsics, names, ARNs and SAM Globals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from streamflow_local.config import ACCOUNT_ID
from streamflow_local.template import Stack, load_template

ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = {
    "Parameters": {
        "ModelName": {"Type": "String", "Default": "churn"},
        "Threshold": {"Type": "String", "Default": "0.02"},
        "Timeout": {"Type": "Number", "Default": 60},
    },
    "Globals": {
        "Function": {
            "Runtime": "python3.11",
            "Timeout": 300,
            "Layers": [{"Ref": "CoreLayer"}],
            "Environment": {"Variables": {"MODEL_NAME": {"Ref": "ModelName"}, "LEVEL": "INFO", "SHARED": "global"}},
        }
    },
    "Resources": {
        "CoreLayer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"LayerName": "core"}},
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": "${AWS::StackName}-data"}}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Worker": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "FunctionName": {"Fn::Sub": "${AWS::StackName}-worker"},
                "Timeout": 30,
                "Environment": {"Variables": {"SHARED": "mine", "TARGET": {"Fn::GetAtt": ["Other", "Arn"]}}},
            },
        },
        "Other": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.handler"}},
        "Machine": {"Type": "AWS::Serverless::StateMachine", "Properties": {"Name": "flow"}},
    },
}


@pytest.fixture
def stack():
    return Stack(TEMPLATE, name="sf", region="eu-west-1", parameter_overrides={"Threshold": "0.05"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AWS::Region", "eu-west-1"),
        ("AWS::AccountId", ACCOUNT_ID),
        ("AWS::StackName", "sf"),
        ("AWS::Partition", "aws"),
        ("AWS::URLSuffix", "amazonaws.com"),
        ("ModelName", "churn"),  # default
        ("Threshold", "0.05"),  # override wins over the default
        ("Timeout", "60"),  # parameters are strings, as in CloudFormation
    ],
)
def test_ref_of_pseudo_parameters_and_parameters(stack, name, expected):
    assert stack.resolve({"Ref": name}) == expected


def test_ref_of_resources_gives_their_physical_names(stack):
    assert stack.resolve({"Ref": "Bucket"}) == "sf-data"
    assert stack.resolve({"Ref": "Worker"}) == "sf-worker"
    assert stack.resolve({"Ref": "Other"}) == "sf-Other"  # no FunctionName: stack-logical
    assert stack.resolve({"Ref": "Table"}) == "sf-Table"
    assert stack.resolve({"Ref": "Machine"}) == f"arn:aws:states:eu-west-1:{ACCOUNT_ID}:stateMachine:flow"


def test_ref_of_a_layer_needs_its_published_arn(stack):
    with pytest.raises(ValueError):
        stack.resolve({"Ref": "CoreLayer"})
    assert stack.resolve({"Ref": "CoreLayer"}, {"CoreLayer": "arn:layer:1"}) == "arn:layer:1"


def test_ref_of_an_unknown_name_is_an_error(stack):
    with pytest.raises(ValueError, match="Nope"):
        stack.resolve({"Ref": "Nope"})


def test_sub_with_pseudo_parameters_parameters_and_attributes(stack):
    text = "${AWS::StackName}/${AWS::Region}/${ModelName}/${Worker.Arn}/${Bucket}"
    assert stack.resolve({"Fn::Sub": text}) == (
        f"sf/eu-west-1/churn/arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:sf-worker/sf-data"
    )


def test_sub_with_its_own_variables(stack):
    value = {"Fn::Sub": ["${Greeting}-${AWS::StackName}-${Fee}", {"Greeting": "hi", "Fee": {"Ref": "Threshold"}}]}
    assert stack.resolve(value) == "hi-sf-0.05"


def test_sub_without_placeholders_is_unchanged(stack):
    assert stack.resolve({"Fn::Sub": "plain $ text {}"}) == "plain $ text {}"


def test_sub_literal_escape(stack):
    assert stack.resolve({"Fn::Sub": "${!Literal}-${AWS::Region}"}) == "${Literal}-eu-west-1"


@pytest.mark.parametrize(
    ("att", "expected"),
    [
        (["Worker", "Arn"], f"arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:sf-worker"),
        ("Other.Arn", f"arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:sf-Other"),
        (["Bucket", "Arn"], "arn:aws:s3:::sf-data"),
        (["Table", "Arn"], f"arn:aws:dynamodb:eu-west-1:{ACCOUNT_ID}:table/sf-Table"),
        (["Worker", "Name"], "sf-worker"),
    ],
)
def test_get_att(stack, att, expected):
    assert stack.resolve({"Fn::GetAtt": att}) == expected


def test_get_att_of_an_unsupported_attribute_is_an_error(stack):
    with pytest.raises(ValueError):
        stack.resolve({"Fn::GetAtt": ["Bucket", "DomainName"]})


def test_join_and_nested_structures(stack):
    value = {"List": [{"Fn::Join": [":", ["a", {"Ref": "AWS::Region"}, {"Ref": "ModelName"}]]}], "Plain": 3}
    assert stack.resolve(value) == {"List": ["a:eu-west-1:churn"], "Plain": 3}


@pytest.mark.parametrize(
    "value",
    [
        {"Fn::Base64": "a"},
        {"Fn::Select": [0, ["a"]]},
        {"Fn::ImportValue": "x"},
        {"Nested": {"Fn::FindInMap": ["M", "a", "b"]}},
    ],
)
def test_unsupported_intrinsic_is_an_error(stack, value):
    with pytest.raises(ValueError, match="Fn::"):
        stack.resolve(value)


def test_globals_are_merged_into_function_properties(stack):
    props = stack.function_properties("Worker")
    assert props["Runtime"] == "python3.11"  # from Globals
    assert props["Timeout"] == 30  # the function's own value wins
    assert props["Layers"] == [{"Ref": "CoreLayer"}]
    variables = props["Environment"]["Variables"]
    assert variables["SHARED"] == "mine"  # function-level variable wins
    assert variables["LEVEL"] == "INFO"  # global variable kept
    assert variables["MODEL_NAME"] == {"Ref": "ModelName"}
    assert variables["TARGET"] == {"Fn::GetAtt": ["Other", "Arn"]}


def test_function_without_environment_gets_the_global_environment(stack):
    props = stack.function_properties("Other")
    assert props["Timeout"] == 300
    assert props["Handler"] == "app.handler"
    assert props["Environment"]["Variables"] == TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


def test_function_properties_do_not_modify_the_template(stack):
    before = json.dumps(TEMPLATE, sort_keys=True)
    stack.function_properties("Worker")["Environment"]["Variables"]["NEW"] = "x"
    stack.function_properties("Other")["Layers"].append("y")
    assert json.dumps(TEMPLATE, sort_keys=True) == before


def test_of_type(stack):
    assert stack.of_type("AWS::Serverless::Function") == ["Worker", "Other"]


# --- the real template.yaml --------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_stack():
    template = load_template(ROOT / "template.yaml")
    return Stack(template, name="streamflow", region="us-east-1", parameter_overrides={"ModelName": "m1"})


def test_load_template_turns_short_tags_into_plain_intrinsics(real_stack):
    fn = real_stack.resources["IngestFunction"]["Properties"]["FunctionName"]
    assert fn == {"Fn::Sub": "${AWS::StackName}-ingest"}
    assert type(next(iter(real_stack.template["Resources"]))) is str


def test_every_function_of_the_real_template_gets_a_function_name(real_stack):
    functions = real_stack.of_type("AWS::Serverless::Function")
    assert len(functions) >= 8
    names = set()
    for logical in functions:
        assert "FunctionName" in real_stack.resources[logical]["Properties"], logical
        name = real_stack.physical[logical]
        assert name.startswith("streamflow-") and "${" not in name, (logical, name)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name), name
        names.add(name)
    assert len(names) == len(functions)


def test_every_definition_substitution_resolves_to_a_lambda_arn(real_stack):
    machine = real_stack.resources["PipelineStateMachine"]["Properties"]
    resolved = real_stack.resolve(machine["DefinitionSubstitutions"])
    function_arns = {real_stack.arn(f) for f in real_stack.of_type("AWS::Serverless::Function")}
    assert resolved
    assert resolved.pop("ShardConcurrency") == "10"  # the Distributed Map's MaxConcurrency (a parameter)
    for key, arn in resolved.items():
        assert re.fullmatch(r"arn:aws:lambda:us-east-1:\d{12}:function:streamflow-[a-z]+", arn), (key, arn)
        assert arn in function_arns, key
    # Every ${...} in the ASL file is one of them.
    definition = (ROOT / machine["DefinitionUri"]).read_text()
    assert set(re.findall(r"\$\{(\w+)\}", definition)) <= set(resolved) | {"ShardConcurrency"}


def test_real_globals_environment_resolves_for_every_function(real_stack):
    for logical in real_stack.of_type("AWS::Serverless::Function"):
        variables = real_stack.resolve(real_stack.function_properties(logical)["Environment"]["Variables"])
        assert variables["MODEL_NAME"] == "m1", logical
        assert variables["DATA_BUCKET"] == f"streamflow-data-{ACCOUNT_ID}-us-east-1", logical
        assert variables["FEATURE_TABLE"] == real_stack.physical["FeatureTable"], logical
        assert all(isinstance(v, str) for v in variables.values()), logical


def test_lifecycle_rules_become_the_s3_apis_and_an_untranslated_key_is_refused():
    from streamflow_local.deploy import lifecycle_rules

    translated = lifecycle_rules({"Rules": [
        {"Id": "a", "Status": "Enabled", "Prefix": "checked/", "ExpirationInDays": 7,
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        {"Id": "b", "Status": "Disabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}},
        {"Id": "c", "Status": "Enabled", "Prefix": "x/", "ExpiredObjectDeleteMarker": True,
         "NoncurrentVersionExpirationInDays": 2},
    ]})
    assert translated == {"Rules": [
        {"ID": "a", "Status": "Enabled", "Filter": {"Prefix": "checked/"}, "Expiration": {"Days": 7},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        {"ID": "b", "Status": "Disabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}},
        {"ID": "c", "Status": "Enabled", "Filter": {"Prefix": "x/"}, "Expiration": {"ExpiredObjectDeleteMarker": True},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 2}},
    ]}
    with pytest.raises(ValueError, match="'t': Transitions is not deployed locally"):
        lifecycle_rules({"Rules": [{"Id": "t", "Status": "Enabled", "Transitions": []}]})
