"""Read ``template.yaml`` the way CloudFormation + SAM would, for the local deploy step.

Only what the template uses is resolved: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``,
``Fn::Join``, pseudo parameters, parameters with defaults and overrides, and SAM's
function ``Globals``. Anything else is an error, so the local deploy never silently
differs from ``sam deploy``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ACCOUNT_ID

SUB_PATTERN = re.compile(r"\$\{([^}!][^}]*)\}")


def load_template(path: Path) -> dict[str, Any]:
    """YAML with CloudFormation's short tags (``!Ref``, ``!Sub``…) as plain dicts."""
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if template is None:
        raise ValueError(f"cannot read {path}: {'; '.join(str(m) for m in matches)}")
    return _plain(template)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


@dataclass
class Stack:
    """A template with its parameters, physical names and ARNs decided up front."""

    template: dict[str, Any]
    name: str
    region: str
    account_id: str = ACCOUNT_ID
    parameter_overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        self.parameters = {
            key: str(self.parameter_overrides.get(key, spec.get("Default", "")))
            for key, spec in self.template.get("Parameters", {}).items()
        }
        self.physical: dict[str, str] = {}
        for logical, resource in self.resources.items():
            self.physical[logical] = self._physical_name(logical, resource)

    # --- names ---------------------------------------------------------------------------
    def _physical_name(self, logical: str, resource: dict[str, Any]) -> str:
        props = resource.get("Properties", {})
        key = {
            "AWS::Serverless::Function": "FunctionName",
            "AWS::S3::Bucket": "BucketName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::Serverless::StateMachine": "Name",
            "AWS::Serverless::LayerVersion": "LayerName",
        }.get(resource["Type"])
        if key and key in props:
            return str(self.resolve(props[key]))
        return f"{self.name}-{logical}"

    def arn(self, logical: str) -> str:
        kind = self.resources[logical]["Type"]
        name = self.physical[logical]
        partition, region, account = "aws", self.region, self.account_id
        if kind == "AWS::Serverless::Function":
            return f"arn:{partition}:lambda:{region}:{account}:function:{name}"
        if kind == "AWS::S3::Bucket":
            return f"arn:{partition}:s3:::{name}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"
        if kind == "AWS::Serverless::StateMachine":
            return f"arn:{partition}:states:{region}:{account}:stateMachine:{name}"
        raise ValueError(f"no ARN for {logical} ({kind}) in the local deploy")

    def ref(self, name: str, layer_arns: dict[str, str] | None = None) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources and not self._is_api(name):
            kind = self.resources[name]["Type"]
            if kind == "AWS::Serverless::StateMachine":
                return self.arn(name)
            if kind == "AWS::Serverless::LayerVersion":
                if layer_arns is None or name not in layer_arns:
                    raise ValueError(f"layer {name} is referenced before it is published")
                return layer_arns[name]
            return self.physical[name]
        if name == "ServerlessRestApi" or self._is_api(name):
            return f"local-{name}"
        if name.endswith("ApiKey") and self._is_api(name[: -len("ApiKey")]):
            return f"local-{name}"  # the key SAM creates for an Api with a usage plan
        raise ValueError(f"unknown Ref {name!r}")

    def _is_api(self, name: str) -> bool:
        return self.resources.get(name, {}).get("Type") == "AWS::Serverless::Api"

    def get_att(self, logical: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn(logical)
        if attribute == "Name":
            return self.physical[logical]
        raise ValueError(f"unsupported GetAtt {logical}.{attribute}")

    # --- intrinsics ------------------------------------------------------------------------
    def resolve(self, value: Any, layer_arns: dict[str, str] | None = None) -> Any:
        if isinstance(value, list):
            return [self.resolve(v, layer_arns) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg, layer_arns)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return self._sub(text, {k: self.resolve(v, layer_arns) for k, v in variables.items()}, layer_arns)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(i) for i in self.resolve(items, layer_arns))
            if key.startswith("Fn::"):
                raise ValueError(f"intrinsic {key} is not supported by the local deploy")
        return {k: self.resolve(v, layer_arns) for k, v in value.items()}

    def _sub(self, text: str, variables: dict[str, Any], layer_arns: dict[str, str] | None) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical, attribute = name.split(".", 1)
                return self.get_att(logical, attribute)
            return str(self.ref(name, layer_arns))

        return SUB_PATTERN.sub(replace, text).replace("${!", "${")  # ${!Literal} → ${Literal}

    # --- SAM -------------------------------------------------------------------------------
    def function_properties(self, logical: str) -> dict[str, Any]:
        """A function's properties with SAM Globals merged in (maps merge, lists replace)."""
        globals_ = copy.deepcopy(self.template.get("Globals", {}).get("Function", {}))
        props = copy.deepcopy(self.resources[logical].get("Properties", {}))
        merged = {**globals_, **props}
        if "Environment" in globals_ or "Environment" in props:
            variables = {**globals_.get("Environment", {}).get("Variables", {}),
                         **props.get("Environment", {}).get("Variables", {})}
            merged["Environment"] = {"Variables": variables}
        return merged

    def of_type(self, kind: str) -> list[str]:
        return [logical for logical, r in self.resources.items() if r["Type"] == kind]
