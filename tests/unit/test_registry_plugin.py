"""AWS's sagemaker-mlflow plugin: where the registry is the stack's SageMaker MLflow (the
tracking URI is its ARN), exactly the functions that call the registry carry it; it is never
in .venv; and where it is installed under a plain URI it stays silent
(streamflow/registry_plugin.py). Driven for real: the pinned wheel, built as its layer is
(``make registry-plugin``), on a subprocess's path beside this venv."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from bench.package import LAMBDA_UNZIPPED_LIMIT, MIB, tree_bytes, venv_estimate
from streamflow_local.image import image_of
from streamflow_local.template import Stack, load_template
from tests.registry_plugin_layer import registry_plugin_path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "registry"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/sf-mlflow"
HEADER = "x-mlflow-sm-tracking-server-arn"
WARNING = "Encountered unexpected error during resolving request headers"
# Who calls the registry (tests/unit/test_registry_template.py's TALKERS, by package kind).
ZIP_TALKERS = {"ApprovalFunction", "RejectionFunction"}
IMAGE_TALKERS = {"DriftFunction", "TrainFunction", "CompareFunction", "PromoteFunction"}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """The plugin as RegistryPluginLayer holds it (``make registry-plugin``; built here when missing)."""
    return registry_plugin_path(tmp_path_factory)


def _run(plugin: Path | None, code: str, uri: str, **extra: str) -> subprocess.CompletedProcess:
    path = [str(plugin)] if plugin else []
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": os.pathsep.join([*path, str(ROOT / "layers" / "core")]),
           "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "us-east-1", "HOME": str(ROOT),
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **extra}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _last_json(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_pin_is_one_and_the_venv_does_not_hold_the_plugin(plugin):
    (line,) = [raw.strip() for raw in (LAYER / "requirements.txt").read_text().splitlines()
               if raw.strip() and not raw.startswith("#")]
    assert str(Requirement(line).specifier) == "==0.5.0"
    assert line in (ROOT / "constraints.txt").read_text().splitlines()
    assert importlib.util.find_spec("sagemaker_mlflow") is None
    assert not [e for e in metadata.entry_points(group="mlflow.request_header_provider") if e.name == "arn"]
    assert {"boto3", "mlflow-skinny"} <= {d.metadata["Name"] for d in metadata.distributions()}  # its requirements
    assert [d.version for d in metadata.distributions(path=[str(plugin)])] == ["0.5.0"]  # --no-deps: the plugin only


PROBE_ARN = r"""
import json
from streamflow import registry
registry.client(registry_uri := __import__("os").environ["MLFLOW_TRACKING_URI"])
from mlflow.tracking.request_header.registry import resolve_request_headers
from mlflow.tracking._tracking_service.utils import _get_store
from mlflow.tracking._model_registry.utils import _get_store as _get_registry_store
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
name = lambda o: f"{type(o).__module__}.{type(o).__name__}"
print(json.dumps({"headers": resolve_request_headers(), "tracking": name(_get_store(registry_uri)),
                  "registry": name(_get_registry_store(registry_uri)),
                  "artifacts": name(get_artifact_repository("s3://bucket/artifacts/1/run/artifacts"))}))
"""


def test_an_arn_uri_resolves_to_the_plugins_stores_and_carries_the_servers_arn(plugin):
    """(a) MLflow's own header resolution and store lookup, with our guard applied."""
    done = _run(plugin, PROBE_ARN, ARN)
    found = _last_json(done)
    assert found["headers"][HEADER] == ARN
    assert found["tracking"] == "sagemaker_mlflow.mlflow_sagemaker_store.MlflowSageMakerStore"
    assert found["registry"] == "sagemaker_mlflow.mlflow_sagemaker_registry_store.MlflowSageMakerRegistryStore"
    assert found["artifacts"] == "sagemaker_mlflow.s3_presigned_artifact_repo.S3PresignedArtifactRepository"
    assert WARNING not in done.stderr


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_registry_call_on_an_arn_is_sigv4_signed_and_names_the_server(plugin):
    """The plugin's own endpoint override points the ARN at a local recorder: MLflow's client
    (through ``streamflow.registry``) sends a SigV4-signed request carrying the server's ARN."""
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code = ("from streamflow import registry\n"
                "print(list(registry.client(__import__('os').environ['MLFLOW_TRACKING_URI']).search_registered_models()))")
        done = _run(plugin, code, ARN, SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert done.stdout.strip().splitlines()[-1] == "[]"
    (request,) = [r for r in _Recorder.seen if "registered-models/search" in r["path"]]
    assert request[HEADER] == ARN
    assert request["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    # signed for the service the template's IAM statements name (sagemaker-mlflow:*)
    assert "/us-east-1/sagemaker-mlflow/aws4_request" in request["authorization"]


PROBE_HEADERS = r"""
import json, sys
if sys.argv[1] == "guarded":
    from streamflow import registry_plugin
    print(json.dumps({"guarded": registry_plugin.quiet_outside_arn()}))
from mlflow.tracking.request_header.registry import resolve_request_headers
print(json.dumps(resolve_request_headers()))
"""


@pytest.mark.parametrize("mode", ["guarded", "bare"])
def test_under_a_plain_uri_the_guard_silences_the_plugin_and_without_it_mlflow_warns(plugin, mode):
    """The bare run is the control: the plugin as AWS ships it warns on every request."""
    done = _run(plugin, PROBE_HEADERS.replace("sys.argv[1]", repr(mode)), "http://127.0.0.1:9")
    headers = _last_json(done)
    assert HEADER not in headers
    if mode == "guarded":
        assert json.loads(done.stdout.splitlines()[0]) == {"guarded": 1}
        assert WARNING not in done.stderr
    else:
        assert WARNING in done.stderr and "ResourceTypeUnsupportedException" not in headers


def test_the_guard_without_the_plugin_does_nothing():
    done = _run(None, "from streamflow import registry_plugin\nprint(registry_plugin.quiet_outside_arn())",
                "http://127.0.0.1:9")
    assert done.stdout.strip() == "0"


# --- who carries it --------------------------------------------------------------------------


def _stack(uri: str) -> Stack:
    return Stack(load_template(ROOT / "template.yaml"), name="sf", region="us-east-1",
                 parameter_overrides={"MlflowTrackingUri": uri})


def _zip_layers(stack: Stack, logical: str) -> list[str]:
    layers = stack.resolve(stack.function_properties(logical).get("Layers", []),
                           {name: name for name in stack.of_type("AWS::Serverless::LayerVersion")})
    return list(layers)


def _image_installs_plugin(stack: Stack, logical: str) -> bool:
    image = image_of(ROOT, stack.resources[logical], stack.function_properties(logical))
    return LAYER / "requirements.txt" in image.requirements


@pytest.mark.parametrize("uri", ["", "http://127.0.0.1:5000"])
def test_only_the_functions_that_call_the_registry_get_the_plugin(uri):
    """Provisioned registry: the zip callers get RegistryPluginLayer, the API and the others do
    not. A given URI: the layer does not exist and no zip function has it. The callers' images
    install it whatever the URI (one image for both; registry_plugin keeps it quiet)."""
    stack = _stack(uri)
    provisioned = uri == ""
    assert ("RegistryPluginLayer" in stack.resources) is provisioned
    for logical in stack.of_type("AWS::Serverless::Function"):
        props = stack.function_properties(logical)
        if props.get("PackageType") == "Image":
            assert _image_installs_plugin(stack, logical) is (logical in IMAGE_TALKERS), logical
            continue
        layers = _zip_layers(stack, logical)
        assert layers[:2] == ["CoreLayer", "DepsLayer"], logical
        assert ("RegistryPluginLayer" in layers) is (provisioned and logical in ZIP_TALKERS), logical
    assert "RegistryPluginLayer" not in _zip_layers(stack, "ApiFunction")


def test_the_layer_is_built_by_its_makefile_without_dependencies():
    layer = _stack("").resources["RegistryPluginLayer"]
    assert layer["Condition"] == "CreateRegistry"
    assert layer["Metadata"] == {"BuildMethod": "makefile"}
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/registry"
    makefile = (LAYER / "Makefile").read_text()
    assert "build-RegistryPluginLayer:" in makefile and "--no-deps" in makefile and "$(ARTIFACTS_DIR)/python" in makefile


def test_zip_functions_with_the_plugin_still_fit_the_unzipped_limit(plugin):
    """Code + core + deps layers (venv estimate, 20 % spare as in test_images) + the built plugin."""
    plugin_bytes = tree_bytes(plugin)
    assert plugin_bytes < 1 * MIB  # a pure-Python wheel of some 60 KiB
    estimate = venv_estimate()
    for logical in ZIP_TALKERS:
        total = estimate[logical]["total_mib"] * MIB * 1.2 + plugin_bytes
        assert total <= LAMBDA_UNZIPPED_LIMIT, (logical, total / MIB)


def test_the_readme_states_the_pin_and_the_servers_size():
    readme = (ROOT / "README.md").read_text()
    (line,) = [raw.strip() for raw in (LAYER / "requirements.txt").read_text().splitlines()
               if raw.strip() and not raw.startswith("#")]
    assert f"pinned {Requirement(line).specifier}".replace("==", "") in readme
    size = _stack("").resources["RegistryServer"]["Properties"]["TrackingServerSize"]
    assert f"`{size}` (the template's" in readme
    assert "`make registry-plugin`" in readme and "RegistryPluginLayer" in readme
