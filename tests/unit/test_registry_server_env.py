"""The registry server's environment: pointed at the emulator's S3, not at itself, and
without MLflow's job runner unless the environment asks for it."""

from __future__ import annotations

from streamflow_local.config import StackConfig
from streamflow_local.stack import registry_server_env


def test_no_job_runner_artifacts_in_the_emulator_and_no_tracking_uri_of_its_own(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://elsewhere:1")
    config = StackConfig(state_dir=tmp_path, aws_port=4599)
    env = registry_server_env(config)
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:4599"
    assert "MLFLOW_TRACKING_URI" not in env and "MLFLOW_REGISTRY_URI" not in env


def test_the_job_runner_stays_on_when_the_environment_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")
    assert registry_server_env(StackConfig(state_dir=tmp_path))["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
