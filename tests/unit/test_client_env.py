"""A child process started with a stack's client environment talks to that stack's registry,
whatever registry URI the parent process exported before (``mlflow.set_registry_uri`` puts
``MLFLOW_REGISTRY_URI`` into ``os.environ``). The benchmark's ``mlflow models serve`` once
resolved ``models:/…@Production`` in the previous stack's registry and fetched artifacts from
its own, and found none."""

from __future__ import annotations

import os
import subprocess
import sys

from streamflow_local.config import StackConfig


def test_a_child_with_the_client_env_resolves_models_in_this_stacks_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:1")  # what an earlier stack left
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    config = StackConfig(mlflow_port=45123, state_dir=tmp_path)
    env = {**os.environ, **config.client_env()}
    probe = "import mlflow; print(mlflow.get_tracking_uri()); print(mlflow.get_registry_uri())"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
                         timeout=120).stdout.split()
    assert out == [config.mlflow_uri, config.mlflow_uri]
