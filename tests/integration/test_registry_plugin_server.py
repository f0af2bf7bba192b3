"""AWS's sagemaker-mlflow plugin installed beside a plain-URI registry (as in the images of
the functions that call the registry, whatever the template's choice): requests to a real
``mlflow server`` go through MLflow's client with no warning, while the plugin as AWS ships
it (no guard) warns on every one (the control)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from streamflow_local.config import free_port
from streamflow_local.stack import stop_process_group

from tests.registry_plugin_layer import registry_plugin_path

ROOT = Path(__file__).resolve().parents[2]
WARNING = "Encountered unexpected error during resolving request headers"


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    return registry_plugin_path(tmp_path_factory)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """A real ``mlflow server``: SQLite registry, artifacts served from a local folder."""
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)  # no job runner, as the stack's registry (stack.registry_server_env)
    log = open(folder / "mlflow.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{uri}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, (folder / "mlflow.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield uri
    finally:
        stop_process_group(process, timeout=10)
        log.close()


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
