"""Read ``template.yaml`` the way CloudFormation + SAM would, for the local deploy step.

Only what the template uses is resolved: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``,
``Fn::Join``, ``Fn::If`` with ``AWS::NoValue``, pseudo parameters, parameters with defaults
and overrides, ``Conditions`` (``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``,
``Condition``; a resource or output whose condition is false is left out, as CloudFormation
does), and SAM's function ``Globals``. Anything else is an error, so the local deploy never
silently differs from ``sam deploy``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ACCOUNT_ID

SUB_PATTERN = re.compile(r"\$\{([^}!][^}]*)\}")
_NO_VALUE = object()  # what ``Ref: AWS::NoValue`` resolves to: dropped from its map or list


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
        self.parameters = {
            key: str(self.parameter_overrides.get(key, spec.get("Default", "")))
            for key, spec in self.template.get("Parameters", {}).items()
        }
        self.resources: dict[str, dict[str, Any]] = {}  # conditions may name parameters only
        self.conditions: dict[str, bool] = {}
        for name in self.template.get("Conditions", {}):
            self.condition(name)
        self.template = {**self.template, **{
            section: {k: v for k, v in self.template[section].items() if self._kept(v)}
            for section in ("Resources", "Outputs") if section in self.template}}
        self.resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        self.physical: dict[str, str] = {}
        for logical, resource in self.resources.items():
            self.physical[logical] = self._physical_name(logical, resource)

    # --- conditions ----------------------------------------------------------------------
    def condition(self, name: str, _seen: tuple[str, ...] = ()) -> bool:
        """The value of a named condition (evaluated once; a cycle is an error)."""
        if name not in self.conditions:
            if name in _seen:
                raise ValueError(f"condition {name!r} refers to itself")
            spec = self.template.get("Conditions", {}).get(name)
            if spec is None:
                raise ValueError(f"unknown condition {name!r}")
            self.conditions[name] = self._truth(spec, (*_seen, name))
        return self.conditions[name]

    def _truth(self, spec: Any, seen: tuple[str, ...]) -> bool:
        if not (isinstance(spec, dict) and len(spec) == 1):
            raise ValueError(f"not a condition: {spec!r}")
        (key, arg), = spec.items()
        if key == "Condition":
            return self.condition(arg, seen)
        if key == "Fn::Equals":
            left, right = (self.resolve(v) for v in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(arg[0], seen)
        if key == "Fn::And":
            return all(self._truth(c, seen) for c in arg)
        if key == "Fn::Or":
            return any(self._truth(c, seen) for c in arg)
        raise ValueError(f"condition function {key} is not supported by the local deploy")

    def _kept(self, entry: Any) -> bool:
        return not (isinstance(entry, dict) and "Condition" in entry) or self.condition(entry["Condition"])

    # --- names ---------------------------------------------------------------------------
    def _physical_name(self, logical: str, resource: dict[str, Any]) -> str:
        props = resource.get("Properties", {})
        key = {
            "AWS::Serverless::Function": "FunctionName",
            "AWS::S3::Bucket": "BucketName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::Serverless::StateMachine": "Name",
            "AWS::Serverless::LayerVersion": "LayerName",
            "AWS::SageMaker::MlflowTrackingServer": "TrackingServerName",
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
        if kind == "AWS::SageMaker::MlflowTrackingServer":  # named only: the emulator has no SageMaker
            return f"arn:{partition}:sagemaker:{region}:{account}:mlflow-tracking-server/{name}"
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
            return self.physical.get(name, f"local-{name}")  # the key SAM creates for an Api with a usage plan
        raise ValueError(f"unknown Ref {name!r}")

    def _is_api(self, name: str) -> bool:
        return self.resources.get(name, {}).get("Type") == "AWS::Serverless::Api"

    def get_att(self, logical: str, attribute: str) -> str:
        if attribute == "Arn" or (attribute == "TrackingServerArn"
                                  and self.resources[logical]["Type"] == "AWS::SageMaker::MlflowTrackingServer"):
            return self.arn(logical)
        if attribute == "Name":
            return self.physical[logical]
        raise ValueError(f"unsupported GetAtt {logical}.{attribute}")

    # --- intrinsics ------------------------------------------------------------------------
    def resolve(self, value: Any, layer_arns: dict[str, str] | None = None) -> Any:
        """``value`` with every intrinsic worked out; ``AWS::NoValue`` leaves its key or item out."""
        resolved = self._resolve(value, layer_arns)
        if resolved is _NO_VALUE:
            raise ValueError("AWS::NoValue where a value is required")
        return resolved

    def _resolve(self, value: Any, layer_arns: dict[str, str] | None = None) -> Any:
        if isinstance(value, list):
            items = (self._resolve(v, layer_arns) for v in value)
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self._resolve(when_true if self.condition(name) else when_false, layer_arns)
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
        items = ((k, self._resolve(v, layer_arns)) for k, v in value.items())
        return {k: v for k, v in items if v is not _NO_VALUE}

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
