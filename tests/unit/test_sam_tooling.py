"""The SAM tooling users already have: `sam validate --lint` on template.yaml (offline),
actionlint on the GitHub workflow, and samconfig.toml's `default` and `local` environments.

The tools live in .venv-tools (made by `make tools`; `make test` makes it first), not in the
runtime .venv: aws-sam-cli pins boto3/click low. Without .venv-tools these tests skip, unless
STREAMFLOW_REQUIRE_TOOLS=1 (set by `make test`), where a missing tool is a failure.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import yaml
from tests.dev_tools import TOOLS_BIN, tool

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1", HOME=os.environ.get("HOME", "/tmp"))
    return env


def test_sam_validate_lint_passes_offline():
    sam = tool("sam")
    result = subprocess.run([str(sam), "validate", "--lint", "--template", str(ROOT / "template.yaml"),
                             "--region", "us-east-1"], capture_output=True, text=True, cwd=ROOT,
                            env=_offline_env(), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_actionlint_passes_on_the_workflow():
    actionlint = tool("actionlint")
    shellcheck = TOOLS_BIN / "shellcheck"
    argv = [str(actionlint), "-no-color"]
    if shellcheck.exists():
        argv += ["-shellcheck", str(shellcheck)]
    result = subprocess.run(argv + [str(WORKFLOW)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_samconfig_has_a_default_and_a_local_environment():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    for env in ("default", "local"):
        deploy = config[env]["deploy"]["parameters"]
        assert config[env]["global"]["parameters"]["stack_name"] == "streamflow"
        assert "CAPABILITY_IAM" in deploy["capabilities"]
        assert deploy["resolve_s3"] is True and deploy["region"]
    # `sam deploy` to a real account asks before changing it; samlocal in CI must not ask.
    assert config["default"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert config["local"]["deploy"]["parameters"]["confirm_changeset"] is False
    # LocalStack runs the functions in containers: the MLflow server on the host is
    # host.docker.internal there, never 127.0.0.1.
    assert "MlflowTrackingUri" in config["local"]["deploy"]["parameters"]["parameter_overrides"]
    assert "127.0.0.1" not in config["local"]["deploy"]["parameters"]["parameter_overrides"]


def test_samconfig_parameters_are_declared_by_the_template():
    from streamflow_local.template import load_template

    declared = set(load_template(ROOT / "template.yaml")["Parameters"])
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env in ("default", "local"):
        overrides = config[env]["deploy"]["parameters"].get("parameter_overrides", "")
        names = {item.split("=", 1)[0] for item in overrides.split()}
        assert names <= declared, (env, names - declared)


def test_workflow_runs_unit_and_localstack_integration_jobs():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert "unit" in jobs
    localstack = jobs["localstack"]
    assert localstack["services"]["localstack"]["image"]
    steps = "\n".join(step.get("run", "") for step in localstack["steps"])
    assert "samlocal deploy" in steps and "STREAMFLOW_EXTERNAL_STACK" in yaml.safe_dump(localstack)
    assert "pytest tests/integration" in steps
