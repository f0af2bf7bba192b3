"""Create ``template.yaml``'s resources in the emulator (what ``sam deploy`` does on AWS).

Layers and function code are zipped from their ``ContentUri``/``CodeUri`` folders and
uploaded through the Lambda API, so the executor runs what was deployed. A ``PackageType:
Image`` function is deployed as what its Dockerfile assembles (``image.py``: the files it
copies under the task root, the handler from its ``CMD``), without layers; this virtual
environment plays the image's ``pip install`` as it plays the deps layer. Re-running
deploy updates code and configuration in place.

Every worker runs this venv, which holds every function's dependencies; so that a function
cannot lean on one its package does not ship, each gets ``STREAMFLOW_IMPORT_GUARD`` naming
the top-level modules of its package (``packages.py``), and the worker refuses the others
as Lambda would (``STREAMFLOW_IMPORT_GUARD=0`` in the deploying process turns that off).
``STREAMFLOW_TRACE_IMPORTS=1`` adds ``PYTHONPROFILEIMPORTTIME=1`` to every function's
environment: each worker's log then lists every module it imported (``python -m
bench.imports`` sums them up per function).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import zipfile
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .config import PROJECT_ROOT, StackConfig
from .image import image_of
from .packages import allowed_modules, function_requirements
from .template import Stack, load_template

LOCAL_ROLE = "streamflow-local-lambda"
TRACE_IMPORTS_ENV = "STREAMFLOW_TRACE_IMPORTS"
IMPORT_GUARD_ENV = "STREAMFLOW_IMPORT_GUARD"  # also the worker's variable: its allowed-modules file
SKIP_PARTS = {"__pycache__", ".pytest_cache"}
# Variables the loop sets on a deployed function (Promote pins the API's champion): a
# re-deploy of a durable stack keeps them, or the API would lose its pin.
RUNTIME_VARIABLES = ("CHAMPION_VERSION", "CHAMPION_SCORER_URI", "CHAMPION_SCORER_SHA256")


def zip_folder(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not SKIP_PARTS.intersection(path.parts) and path.suffix != ".pyc":
                info = zipfile.ZipInfo(prefix + path.relative_to(folder).as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


# CloudFormation's lifecycle rule keys that are the S3 API's under another name or nesting.
_RULE_KEYS = {"Id": "ID", "Status": "Status", "AbortIncompleteMultipartUpload": "AbortIncompleteMultipartUpload",
              "NoncurrentVersionExpiration": "NoncurrentVersionExpiration"}


def lifecycle_rules(configuration: dict[str, Any]) -> dict[str, Any]:
    """An ``AWS::S3::Bucket`` ``LifecycleConfiguration`` as ``PutBucketLifecycleConfiguration``
    takes it (``Prefix`` → ``Filter``, ``ExpirationInDays`` → ``Expiration.Days``, …); a key
    this does not translate is refused, not dropped."""
    rules = []
    for rule in configuration["Rules"]:
        out: dict[str, Any] = {"Filter": {"Prefix": rule.get("Prefix", "")}}
        for key, value in rule.items():
            if key in _RULE_KEYS:
                out[_RULE_KEYS[key]] = value
            elif key == "ExpirationInDays":
                out.setdefault("Expiration", {})["Days"] = value
            elif key == "ExpiredObjectDeleteMarker":
                out.setdefault("Expiration", {})["ExpiredObjectDeleteMarker"] = value
            elif key == "NoncurrentVersionExpirationInDays":
                out["NoncurrentVersionExpiration"] = {"NoncurrentDays": value}
            elif key != "Prefix":
                raise ValueError(f"lifecycle rule {rule.get('Id')!r}: {key} is not deployed locally")
        rules.append(out)
    return {"Rules": rules}


class LocalDeployer:
    def __init__(self, config: StackConfig, parameter_overrides: dict[str, str] | None = None):
        self.config = config
        overrides = {"MlflowTrackingUri": config.mlflow_uri, **(parameter_overrides or {})}
        self.stack = Stack(load_template(config.template), config.stack_name, config.region,
                           parameter_overrides=overrides)
        if self.stack.of_type("AWS::SageMaker::MlflowTrackingServer"):
            raise ValueError("MlflowTrackingUri is empty, so the template would create SageMaker's managed MLflow, "
                             "which the local stack cannot run: give the local deploy a registry URI")
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name=config.region)
        self.clients = {name: session.client(name, endpoint_url=config.aws_endpoint)
                        for name in ("s3", "dynamodb", "lambda", "stepfunctions", "iam", "events", "apigateway")}
        self.layer_arns: dict[str, str] = {}

    def _resolve(self, value: Any) -> Any:
        return self.stack.resolve(value, self.layer_arns)

    def deploy(self) -> dict[str, Any]:
        role_arn = self._role()
        for logical in self.stack.of_type("AWS::S3::Bucket"):
            self._bucket(logical)
        for logical in self.stack.of_type("AWS::DynamoDB::Table"):
            self._table(logical)
        for logical in self.stack.of_type("AWS::Serverless::LayerVersion"):
            self._layer(logical)
        functions = {logical: self._function(logical, role_arn)
                     for logical in self.stack.of_type("AWS::Serverless::Function")}
        machines = {logical: self._state_machine(logical, role_arn)
                    for logical in self.stack.of_type("AWS::Serverless::StateMachine")}
        for logical in self.stack.of_type("AWS::S3::BucketPolicy"):
            self._bucket_policy(logical)
        self._notifications()
        self._event_rules()
        api = self._api()
        if api.get("api_key"):
            api["api_key_id"] = self.stack.physical[api["api_key_logical"]] = self._registered_api_key(
                f"{self.stack.name}-{api['api_key_logical']}", api["api_key"])
        outputs = {key: local_api_address(str(self._resolve(spec["Value"])), api, self.stack.region)
                   for key, spec in self.stack.template.get("Outputs", {}).items()}
        description = {
            "stack": self.stack.name,
            "region": self.stack.region,
            "parameters": self.stack.parameters,
            "functions": functions,
            "state_machines": machines,
            "buckets": {name: self.stack.physical[name] for name in self.stack.of_type("AWS::S3::Bucket")},
            "tables": {name: self.stack.physical[name] for name in self.stack.of_type("AWS::DynamoDB::Table")},
            "api": api,
            "outputs": outputs,
        }
        self.config.stack_file.parent.mkdir(parents=True, exist_ok=True)
        self.config.stack_file.write_text(json.dumps(description, indent=2) + "\n")
        return description

    # --- resources -------------------------------------------------------------------------
    def _role(self) -> str:
        iam = self.clients["iam"]
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]}
        try:
            return iam.create_role(RoleName=LOCAL_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "EntityAlreadyExists":
                raise
            return iam.get_role(RoleName=LOCAL_ROLE)["Role"]["Arn"]

    def _bucket(self, logical: str) -> None:
        s3 = self.clients["s3"]
        name = self.stack.physical[logical]
        props = self._resolve(self.stack.resources[logical].get("Properties", {}))
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
        if "BucketEncryption" in props:
            rules = [  # CloudFormation's key differs from the S3 API's
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
        if "LifecycleConfiguration" in props:  # kept, not enforced: the emulator expires nothing
            s3.put_bucket_lifecycle_configuration(Bucket=name,
                                                  LifecycleConfiguration=lifecycle_rules(props["LifecycleConfiguration"]))

    def _bucket_policy(self, logical: str) -> None:
        """Apply the policy, less statements that demand TLS: the emulator is plain HTTP on
        loopback, and moto enforces bucket policies (it would deny every call)."""
        props = self._resolve(self.stack.resources[logical]["Properties"])
        document = dict(props["PolicyDocument"])
        document["Statement"] = [
            statement for statement in document.get("Statement", [])
            if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))
        ]
        if document["Statement"]:
            self.clients["s3"].put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))

    def _table(self, logical: str) -> None:
        dynamodb = self.clients["dynamodb"]
        props = self._resolve(self.stack.resources[logical]["Properties"])
        try:
            dynamodb.create_table(
                TableName=self.stack.physical[logical],
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise

    def _layer(self, logical: str) -> None:
        props = self._resolve(self.stack.resources[logical]["Properties"])
        content = zip_folder(PROJECT_ROOT / props["ContentUri"], prefix="python/")
        response = self.clients["lambda"].publish_layer_version(
            LayerName=self.stack.physical[logical],
            Description=props.get("Description", ""),
            Content={"ZipFile": content},
            CompatibleRuntimes=props.get("CompatibleRuntimes", []),
        )
        self.layer_arns[logical] = response["LayerVersionArn"]

    def _function(self, logical: str, role_arn: str) -> dict[str, Any]:
        lam = self.clients["lambda"]
        props = self._resolve(self.stack.function_properties(logical))
        name = self.stack.physical[logical]
        described: dict[str, Any] = {"name": name, "arn": self.stack.arn(logical)}
        if props.get("PackageType") == "Image":
            image = image_of(PROJECT_ROOT, self.stack.resources[logical], props)
            code, runtime, handler, layers = image.code_zip(), image.runtime, image.handler, []
            described.update(package_type="Image", dockerfile=image.dockerfile.relative_to(PROJECT_ROOT).as_posix(),
                             handler=handler, code=sorted({path.split("/")[0] + ("/" if "/" in path else "")
                                                          for path in image.code_paths()}))
        else:
            code, runtime, handler = zip_folder(PROJECT_ROOT / props["CodeUri"]), props["Runtime"], props["Handler"]
            layers = list(props.get("Layers", []))
            described.update(package_type="Zip", code_uri=props["CodeUri"])
        variables = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        if os.environ.get(TRACE_IMPORTS_ENV):
            variables["PYTHONPROFILEIMPORTTIME"] = "1"
        if os.environ.get(IMPORT_GUARD_ENV, "1") != "0":
            variables[IMPORT_GUARD_ENV] = str(self._import_guard(logical, name))
        config = {
            "FunctionName": name,
            "Runtime": runtime,
            "Role": role_arn,
            "Handler": handler,
            "Description": props.get("Description", ""),
            "Timeout": int(props.get("Timeout", 3)),
            "MemorySize": int(props.get("MemorySize", 128)),
            "Environment": {"Variables": variables},
            "Layers": layers,
        }
        try:
            existing = lam.get_function(FunctionName=name)["Configuration"].get("Environment", {}).get("Variables", {})
            for key in RUNTIME_VARIABLES:  # set by the running loop (Promote), not by the template
                if key in existing and key not in variables:
                    variables[key] = existing[key]
            lam.update_function_code(FunctionName=name, ZipFile=code)
            lam.update_function_configuration(**{k: v for k, v in config.items() if k != "Runtime"})
        except lam.exceptions.ResourceNotFoundException:
            lam.create_function(Code={"ZipFile": code}, **config)
        return described

    def _import_guard(self, logical: str, name: str) -> Path:
        """The file naming the modules ``logical``'s package installs (read by the worker)."""
        requirements = function_requirements(self.stack, logical)
        path = self.config.state_dir / "import-guard" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"function": logical, "requirements": requirements,
                                    "modules": allowed_modules(requirements)}) + "\n")
        return path

    def _state_machine(self, logical: str, role_arn: str) -> dict[str, Any]:
        sfn = self.clients["stepfunctions"]
        props = self._resolve(self.stack.resources[logical]["Properties"])
        definition = (PROJECT_ROOT / props["DefinitionUri"]).read_text()
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        json.loads(definition)  # fail here, not at the first execution
        name, arn = self.stack.physical[logical], self.stack.arn(logical)
        try:
            sfn.describe_state_machine(stateMachineArn=arn)
            sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=role_arn)
        except sfn.exceptions.StateMachineDoesNotExist:
            sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn)
        return {"name": name, "arn": arn, "definition_uri": props["DefinitionUri"]}

    def _notifications(self) -> None:
        per_bucket: dict[str, list[dict[str, Any]]] = {}
        for logical in self.stack.of_type("AWS::Serverless::Function"):
            for event in self.stack.resources[logical].get("Properties", {}).get("Events", {}).values():
                if event["Type"] != "S3":
                    continue
                props = self._resolve(event["Properties"])
                events = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
                config: dict[str, Any] = {"LambdaFunctionArn": self.stack.arn(logical), "Events": events}
                if "Filter" in props:
                    config["Filter"] = {"Key": {"FilterRules": props["Filter"]["S3Key"]["Rules"]}}
                per_bucket.setdefault(props["Bucket"], []).append(config)
        for bucket, configs in per_bucket.items():
            self.clients["s3"].put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"LambdaFunctionConfigurations": configs})

    def _event_rules(self) -> None:
        """A function's ``EventBridgeRule`` events: a rule on the default bus with the
        function as its target (what SAM creates)."""
        events = self.clients["events"]
        for logical in self.stack.of_type("AWS::Serverless::Function"):
            for event_name, event in self.stack.resources[logical].get("Properties", {}).get("Events", {}).items():
                if event["Type"] not in ("EventBridgeRule", "CloudWatchEvent"):
                    continue
                props = self._resolve(event["Properties"])
                rule = f"{self.stack.name}-{logical}-{event_name}"[:64]
                events.put_rule(Name=rule, EventPattern=json.dumps(props["Pattern"]), State="ENABLED")
                events.put_targets(Rule=rule, Targets=[{"Id": logical[:64], "Arn": self.stack.arn(logical)}])

    def _api(self) -> dict[str, Any]:
        """The API function, its routes, and the API key the local gateway demands when the
        template's Api says ``ApiKeyRequired`` (generated here, never kept in the repo)."""
        for logical in self.stack.of_type("AWS::Serverless::Function"):
            events = [e for e in self.stack.resources[logical].get("Properties", {}).get("Events", {}).values()
                      if e["Type"] == "Api"]
            if not events:
                continue
            routes = [{"path": e["Properties"]["Path"], "method": e["Properties"]["Method"]} for e in events]
            api_id = events[0]["Properties"].get("RestApiId", {}).get("Ref") if isinstance(
                events[0]["Properties"].get("RestApiId"), dict) else None
            auth = self.stack.resources.get(api_id, {}).get("Properties", {}).get("Auth", {}) if api_id else {}
            api: dict[str, Any] = {"function": self.stack.physical[logical], "routes": routes, "url": self.config.api_url,
                                   "api_key_required": bool(auth.get("ApiKeyRequired"))}
            if api_id:
                api["rest_api"] = self._resolve({"Ref": api_id})  # its id, as in outputs that name it
                api["stage"] = self.stack.resources[api_id].get("Properties", {}).get("StageName")
            if api["api_key_required"]:
                api["api_key"] = self._existing_api_key() or secrets.token_urlsafe(24)
                api["api_key_logical"] = f"{api_id or 'ServerlessRestApi'}ApiKey"  # the key SAM creates for the Api
            return api
        return {}

    def _registered_api_key(self, name: str, value: str) -> str:
        """The key's id in the emulator's API Gateway, where README's ``aws apigateway
        get-api-key --include-value --api-key <ApiKeyId>`` reads its value, as on AWS (the
        local gateway checks requests against the same value, from the stack's description)."""
        apigateway = self.clients["apigateway"]
        for item in apigateway.get_api_keys(nameQuery=name, includeValues=True)["items"]:
            if item["name"] == name and item.get("value") == value:
                return str(item["id"])
            if item["name"] == name:
                apigateway.delete_api_key(apiKey=item["id"])
        return str(apigateway.create_api_key(name=name, value=value, enabled=True)["id"])

    def _existing_api_key(self) -> str | None:
        try:
            return json.loads(self.config.stack_file.read_text()).get("api", {}).get("api_key")
        except (OSError, ValueError):
            return None


def local_api_address(value: str, api: dict[str, Any], region: str) -> str:
    """An output naming the Api's AWS address (``https://<id>.execute-api.<region>.amazonaws.com/Prod/``)
    with the local gateway's in its place (``http://127.0.0.1:3000/Prod/``, which serves the
    stage's paths as AWS does, and the same paths without it)."""
    if not api.get("rest_api") or not api.get("url"):
        return value
    aws_address = f"https://{api['rest_api']}.execute-api.{region}.amazonaws.com"
    return value.replace(aws_address, str(api["url"]).rstrip("/"))


def deploy(config: StackConfig, parameter_overrides: dict[str, str] | None = None) -> dict[str, Any]:
    return LocalDeployer(config, parameter_overrides).deploy()
