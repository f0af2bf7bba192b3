"""A deployed function's name, from either description of a stack: the local deploy's
(``{"name": ...}`` per function) or ``streamflow attach``'s (CloudFormation's physical id)."""

from streamflow_local.stack_client import function_name


def test_the_local_deploys_description():
    description = {"functions": {"PromoteFunction": {"name": "streamflow-promote", "arn": "arn:aws:lambda:x"}}}
    assert function_name(description, "PromoteFunction") == "streamflow-promote"


def test_an_attached_stacks_physical_ids_name_or_arn():
    description = {"functions": {"PromoteFunction": "sf-promote-AbC123",
                                 "ApiFunction": "arn:aws:lambda:us-east-1:000000000000:function:sf-api-X"}}
    assert function_name(description, "PromoteFunction") == "sf-promote-AbC123"
    assert function_name(description, "ApiFunction") == "sf-api-X"
