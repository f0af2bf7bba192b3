"""Serving without a registry call, through the real stack: Promote copies the champion's tree
scorer to the data bucket and pins it on the API; the API cold-starts from that copy with the
registry stopped, and serves a champion promoted through a registry that needs credentials
it does not hold.

Runs after the other modules on the shared stack (it restores what it changes); run alone, it
crowns a first champion with month_000.
"""

from __future__ import annotations

import base64
import json

import pytest
import requests

from streamflow.champion_pin import CHAMPION_ENV, PIN_VARIABLES, SCORER_SHA_ENV, SCORER_URI_ENV, sha256_hex
from streamflow.generator import write_month
from streamflow_local.config import free_port
from streamflow_local.deploy import deploy
from streamflow_local.stack import hold_registry, release_registry
from streamflow_local.stack_client import api_headers, data_bucket, first_user, upload_month, wait_for_execution

from auth_proxy import BasicAuthProxy
from clients import MODEL, alias, aws

pytestmark = pytest.mark.integration
AUTH_MODEL = "streamflow_churn_basic_auth"  # a model of its own: its first month always promotes


def _api_name(stack) -> str:
    return f"{stack.stack_name}-api"


def _api_env(stack) -> dict[str, str]:
    config = aws(stack, "lambda").get_function_configuration(FunctionName=_api_name(stack))
    return dict(config["Environment"]["Variables"])


def _set_api_env(stack, variables: dict[str, str]) -> None:
    """A configuration change: the emulator retires the API's workers (a cold start), as Lambda does."""
    aws(stack, "lambda").update_function_configuration(FunctionName=_api_name(stack),
                                                       Environment={"Variables": variables})


def _get(stack, path: str) -> requests.Response:
    return requests.get(f"{stack.api_url}{path}", headers=api_headers(stack), timeout=120)


def _predict(stack, user_id: str) -> requests.Response:
    return requests.post(f"{stack.api_url}/predict", json={"user_id": user_id}, headers=api_headers(stack),
                         timeout=120)


def _s3_object(stack, uri: str) -> bytes:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return aws(stack, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def champion(stack, months) -> str:
    """Production exists (earlier modules, or month_000 here); its version."""
    if alias(stack, "Production") is None:
        description = wait_for_execution(stack, upload_month(stack, months[0]).execution_arn)
        assert description["status"] == "SUCCEEDED", description.get("cause")
    return alias(stack, "Production")


def test_promote_pins_the_champions_scorer_copy_on_the_api(stack, champion):
    env = _api_env(stack)
    assert env[CHAMPION_ENV] == champion
    uri = env[SCORER_URI_ENV]
    assert uri == f"{env['SERVING_PREFIX']}{champion}/tree_scorer.json"
    assert uri.startswith(f"s3://{stack.stack_name}-data-") and f"/serving/{MODEL}/" in uri
    body = _s3_object(stack, uri)
    assert sha256_hex(body) == env[SCORER_SHA_ENV]
    assert json.loads(body)["format"] == "streamflow.tree_scorer/1"


def test_api_cold_starts_and_answers_with_the_registry_stopped(stack, champion, months):
    user_id = first_user(months[0])
    before = _api_env(stack)
    hold_registry(stack)
    try:
        assert requests.get(f"{stack.mlflow_uri}/health", timeout=2).status_code >= 500
    except requests.ConnectionError:
        pass  # stopped: nothing listens
    try:
        # Both a cold start and a registry nobody could reach: the tracking URI on a closed port.
        _set_api_env(stack, {**before, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})
        health = _get(stack, "/health")
        answer = _predict(stack, user_id)
    finally:
        _set_api_env(stack, before)
        release_registry(stack)
    assert health.status_code == 200, health.text
    assert health.json()["model_version"] == champion and health.json()["status"] == "ok"
    assert health.json()["model_source"] == before[SCORER_URI_ENV]
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == champion


@pytest.fixture
def basic_auth_registry(stack):
    """The stack redeployed on a registry behind HTTP basic auth: every function but the API
    holds the credentials (as MLflow reads them: MLFLOW_TRACKING_USERNAME/PASSWORD), under a
    model name of its own. Restored afterwards, the API's pin included."""
    user, password = "streamflow", "s3cret-for-the-test"
    lam = aws(stack, "lambda")
    api_before = _api_env(stack)
    with BasicAuthProxy(stack.mlflow_uri, user, password) as proxy:
        try:
            description = deploy(stack, {"MlflowTrackingUri": proxy.url, "ModelName": AUTH_MODEL})
            for function in description["functions"].values():
                name = function["name"]
                if name == _api_name(stack):
                    continue
                variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
                lam.update_function_configuration(FunctionName=name, Environment={"Variables": {
                    **variables, "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}})
            yield proxy
        finally:
            deploy(stack)
            _set_api_env(stack, {**_api_env(stack), **{k: api_before[k] for k in PIN_VARIABLES if k in api_before}})


def test_a_registry_behind_basic_auth_promotes_and_the_api_serves_without_credentials(
        stack, champion, basic_auth_registry, months):
    proxy = basic_auth_registry
    refused = requests.get(f"{proxy.url}/api/2.0/mlflow/registered-models/search", timeout=10)
    assert refused.status_code == 401  # the registry does need credentials
    proxy.denied.clear()
    authorised = {"Authorization": "Basic " + base64.b64encode(b"streamflow:s3cret-for-the-test").decode()}
    assert requests.get(f"{proxy.url}/health", headers=authorised, timeout=10).status_code == 200

    upload = upload_month(stack, write_month(stack.state_dir / "data", 41, n_users=3000))
    description = wait_for_execution(stack, upload.execution_arn, timeout=600)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    summary = json.loads(description["output"])
    assert summary["promoted"] is True, summary
    version = str(summary["production_version"])

    api = _api_env(stack)
    assert "MLFLOW_TRACKING_USERNAME" not in api and "MLFLOW_TRACKING_PASSWORD" not in api
    assert api["MLFLOW_TRACKING_URI"] == proxy.url and api[CHAMPION_ENV] == version
    health = _get(stack, "/health").json()
    assert (health["status"], health["model_name"], health["model_version"]) == ("ok", AUTH_MODEL, version)
    assert health["model_source"] == f"s3://{data_bucket(stack)}/serving/{AUTH_MODEL}/{version}/tree_scorer.json"
    answer = _predict(stack, first_user(months[0]))
    assert answer.status_code == 200 and answer.json()["model_version"] == version
    assert proxy.forwarded > 0  # the loop went through the proxy, with its credentials
    assert proxy.denied == []  # and nothing without credentials (the API) asked the registry
