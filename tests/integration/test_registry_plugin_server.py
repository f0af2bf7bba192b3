"""AWS's sagemaker-mlflow plugin installed beside a plain-URI registry (as in the images of
the functions that call the registry, whatever the template's choice): requests to a real
``mlflow server`` go through MLflow's client with no warning, while the plugin as AWS ships
it (no guard) warns on every one (the control)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow_server import plain_mlflow_server

from tests.registry_plugin_layer import registry_plugin_path

ROOT = Path(__file__).resolve().parents[2]
WARNING = "Encountered unexpected error during resolving request headers"


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    return registry_plugin_path(tmp_path_factory)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    with plain_mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


CALLS = r"""
import sys
from streamflow import registry
uri = sys.argv[1]
if sys.argv[2] == "guarded":
    client = registry.client(uri)
    mlflow = registry._mlflow(uri)
else:  # the control: MLflow's client with the plugin as shipped
    import mlflow
    from mlflow import MlflowClient
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
name = "plugin-check-" + sys.argv[2]
client.create_registered_model(name)
mlflow.set_experiment(name)
with mlflow.start_run() as run:
    mlflow.log_metric("auc", 0.5)
found = [m.name for m in client.search_registered_models(filter_string=f"name = '{name}'")]
print("RESULT", found, client.get_run(run.info.run_id).data.metrics)
"""


@pytest.mark.parametrize("mode", ["guarded", "bare"])
def test_requests_to_a_plain_mlflow_server_with_the_plugin_installed(plugin, mlflow_uri, mode):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true",
           "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT / "layers" / "core")]), "MLFLOW_TRACKING_URI": mlflow_uri}
    done = subprocess.run([sys.executable, "-c", CALLS, mlflow_uri, mode], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"RESULT ['plugin-check-{mode}'] {{'auc': 0.5}}" in done.stdout
    if mode == "guarded":
        assert WARNING not in done.stderr, done.stderr[-2000:]
        assert "sagemaker" not in done.stderr.lower()
    else:
        assert done.stderr.count(WARNING) >= 5  # one a request: create, experiment, run, metric, search, get
