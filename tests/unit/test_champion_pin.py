"""The champion pinned in the API's configuration (streamflow/champion_pin.py): the pure
rules, the template's least-privilege grant, and the API's cold start from the S3 copy with
the registry unreachable (a closed port), on a real S3 endpoint (the emulator's moto server).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import boto3
import pytest
from aws_endpoint import endpoint_env, free_port, moto_endpoint
from mangum import Mangum
from streamflow import champion_pin, online_store, storage
from streamflow.champion_pin import (
    CHAMPION_ENV,
    PIN_VARIABLES,
    SCORER_SHA_ENV,
    SCORER_URI_ENV,
    Pin,
    ScorerCopy,
    ScorerCopyMismatch,
)
from streamflow.scorer import FILE_NAME, TreeScorer
from streamflow.settings import Settings
from streamflow_local.gateway import proxy_event
from streamflow_local.template import Stack, load_template

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "s3://unit-data/serving/streamflow_churn/"
STUMP = TreeScorer([("months_active", None)], 0.0, [
    ([0, 0, 0], [10.0, 0.0, 0.0], [False] * 3, [1, 0, 0], [2, 0, 0], [False, True, True], [0.0, 2.0, -2.0]),
])


# --- pure rules --------------------------------------------------------------------------------

def test_split_s3_uri():
    assert champion_pin.split_s3_uri("s3://b/serving/m/3/tree_scorer.json") == ("b", "serving/m/3/tree_scorer.json")
    for bad in ("https://b/k", "s3://b", "s3://b/", "s3:///k", "models:/m/3"):
        with pytest.raises(ValueError):
            champion_pin.split_s3_uri(bad)


def test_scorer_uri_is_the_version_under_the_prefix():
    assert champion_pin.scorer_uri(PREFIX, "12") == f"{PREFIX}12/{FILE_NAME}"
    for prefix, version in ((PREFIX.rstrip("/"), "1"), ("serving/m/", "1"), (PREFIX, ""), (PREFIX, "../1")):
        with pytest.raises(ValueError):
            champion_pin.scorer_uri(prefix, version)


def test_the_api_reads_only_below_its_own_prefix():
    champion_pin.check_under_prefix(f"{PREFIX}3/{FILE_NAME}", PREFIX)
    champion_pin.check_under_prefix("s3://elsewhere/k.json", "")  # no prefix known: IAM decides
    with pytest.raises(ValueError, match="outside this function's serving prefix"):
        champion_pin.check_under_prefix("s3://unit-data/months/x.json", PREFIX)
    with pytest.raises(ValueError, match="outside"):
        champion_pin.check_under_prefix("s3://unit-data-other/serving/streamflow_churn/3/x", PREFIX)


def test_verify_refuses_other_bytes():
    body = STUMP.to_json().encode()
    assert champion_pin.verify(body, champion_pin.sha256_hex(body)) is body
    with pytest.raises(ScorerCopyMismatch, match="the pin says"):
        champion_pin.verify(body + b" ", champion_pin.sha256_hex(body))


def test_pinned_variables_write_the_pin_and_keep_everything_else():
    before = {"FEATURE_TABLE": "t", CHAMPION_ENV: "2", SCORER_URI_ENV: "s3://b/2", SCORER_SHA_ENV: "aa"}
    after = champion_pin.pinned_variables(before, Pin("3", ScorerCopy("s3://b/3", "bb")))
    assert after == {"FEATURE_TABLE": "t", CHAMPION_ENV: "3", SCORER_URI_ENV: "s3://b/3", SCORER_SHA_ENV: "bb"}
    assert before[CHAMPION_ENV] == "2"  # not changed in place


def test_a_version_without_a_copy_drops_the_old_copy():
    before = {"FEATURE_TABLE": "t", CHAMPION_ENV: "2", SCORER_URI_ENV: "s3://b/2", SCORER_SHA_ENV: "aa"}
    assert champion_pin.pinned_variables(before, Pin("1", None)) == {"FEATURE_TABLE": "t", CHAMPION_ENV: "1"}


def test_read_pin():
    assert champion_pin.read_pin({}) is None
    assert champion_pin.read_pin({CHAMPION_ENV: " "}) is None
    assert champion_pin.read_pin({CHAMPION_ENV: "4"}) == Pin("4", None)
    assert champion_pin.read_pin({CHAMPION_ENV: "4", SCORER_URI_ENV: "s3://b/k"}) == Pin("4", None)  # no hash: no copy
    env = {CHAMPION_ENV: "4", SCORER_URI_ENV: "s3://b/k", SCORER_SHA_ENV: "cc"}
    assert champion_pin.read_pin(env) == Pin("4", ScorerCopy("s3://b/k", "cc"))
    assert champion_pin.read_pin(champion_pin.pinned_variables({}, Pin("4", ScorerCopy("s3://b/k", "cc")))) \
        == Pin("4", ScorerCopy("s3://b/k", "cc"))


def test_a_local_redeploy_keeps_every_pinned_variable():
    from streamflow_local.deploy import RUNTIME_VARIABLES

    assert set(PIN_VARIABLES) <= set(RUNTIME_VARIABLES)


# --- the template: the API may read exactly the prefix Promote writes --------------------------

@pytest.fixture(scope="module")
def real_stack() -> Stack:
    return Stack(load_template(ROOT / "template.yaml"), name="sf", region="us-east-1",
                 parameter_overrides={"ModelName": "m1"})


def _s3_statements(stack: Stack, logical: str) -> list[dict]:
    policies = stack.resources[logical]["Properties"].get("Policies", [])
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    return [stack.resolve(s, {}) for s in statements if str(s.get("Action", "")).startswith("s3:")]


def test_api_and_promote_share_one_serving_prefix_that_the_template_grants(real_stack):
    env = {logical: real_stack.resolve(real_stack.resources[logical]["Properties"]["Environment"]["Variables"], {})
           for logical in ("ApiFunction", "PromoteFunction")}
    prefix = env["ApiFunction"]["SERVING_PREFIX"]
    bucket = real_stack.resolve(real_stack.resources["DataBucket"]["Properties"]["BucketName"], {})
    assert prefix == env["PromoteFunction"]["SERVING_PREFIX"] == f"s3://{bucket}/serving/m1/"
    resource = f"arn:aws:s3:::{prefix[len('s3://'):]}*"
    api_s3 = _s3_statements(real_stack, "ApiFunction")
    assert api_s3 == [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}]
    api_policies = real_stack.resources["ApiFunction"]["Properties"]["Policies"]
    assert not [p for p in api_policies if any(k.startswith("S3") for k in p)]  # no wider S3 template
    assert {"Effect": "Allow", "Action": "s3:PutObject", "Resource": resource} in _s3_statements(
        real_stack, "PromoteFunction")
    assert not set(PIN_VARIABLES) & set(env["ApiFunction"])  # runtime values: a deploy must not reset them


# --- the API's cold start from the pinned copy, the registry unreachable -----------------------

APP = ROOT / "functions" / "api" / "app.py"


def _import_api(name: str):
    spec = importlib.util.spec_from_file_location(name, APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _health(api) -> dict:
    response = Mangum(api.app, lifespan="off")(proxy_event("GET", "/health", {}, b""), None)
    assert response["statusCode"] == 200
    return json.loads(response["body"])


@pytest.fixture
def s3_stack(monkeypatch):
    """A moto S3 endpoint with the data bucket, the API's environment, a dead registry."""
    with moto_endpoint() as endpoint:
        for key, value in endpoint_env(endpoint).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("FEATURE_TABLE", "unit-pin-features")
        monkeypatch.setenv("MODEL_NAME", "streamflow_churn")
        monkeypatch.setenv("SERVING_PREFIX", PREFIX)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nobody listens
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
        for key in PIN_VARIABLES:
            monkeypatch.delenv(key, raising=False)
        storage.s3.cache_clear()
        online_store._client.cache_clear()
        boto3.client("s3").create_bucket(Bucket="unit-data")
        try:
            yield endpoint
        finally:
            storage.s3.cache_clear()
            online_store._client.cache_clear()


def _pin_env(monkeypatch, version: str, copy: ScorerCopy) -> None:
    for key, value in champion_pin.pinned_variables({}, Pin(version, copy)).items():
        monkeypatch.setenv(key, value)


def test_publish_then_load_serves_the_copy_without_the_registry(s3_stack, monkeypatch):
    from streamflow.served_model import load_champion

    copy = champion_pin.publish_scorer(PREFIX, "5", STUMP.to_json().encode())
    assert copy.uri == f"{PREFIX}5/{FILE_NAME}"
    _pin_env(monkeypatch, "5", copy)
    champion = load_champion(Settings.from_env(), "5")
    assert champion.version == "5" and champion.source == copy.uri
    assert champion.probability({"months_active": 3}) == STUMP.probability({"months_active": 3})


def test_a_changed_copy_is_refused(s3_stack, monkeypatch):
    from streamflow.served_model import load_champion

    copy = champion_pin.publish_scorer(PREFIX, "6", STUMP.to_json().encode())
    storage.put_bytes("unit-data", champion_pin.split_s3_uri(copy.uri)[1], b'{"format": "other"}')
    _pin_env(monkeypatch, "6", copy)
    with pytest.raises(ScorerCopyMismatch):
        load_champion(Settings.from_env(), "6")


def test_api_cold_start_names_the_s3_source_in_health(s3_stack, monkeypatch):
    copy = champion_pin.publish_scorer(PREFIX, "7", STUMP.to_json().encode())
    _pin_env(monkeypatch, "7", copy)
    name = "streamflow_unit_api_pinned"
    try:
        body = _health(_import_api(name))
    finally:
        sys.modules.pop(name, None)
    assert (body["status"], body["model_version"], body["model_source"]) == ("ok", "7", copy.uri)


def test_api_without_a_pin_reports_the_registry_it_could_not_reach(s3_stack):
    name = "streamflow_unit_api_unpinned"
    try:
        body = _health(_import_api(name))
    finally:
        sys.modules.pop(name, None)
    assert body["status"] == "no_model" and body["model_source"] is None
    assert body["detail"].startswith("could not load the champion")


def test_the_docs_name_the_variables_and_the_location_the_code_uses():
    readme, architecture = (ROOT / "README.md").read_text(), (ROOT / "docs" / "architecture.md").read_text()
    for name in (*PIN_VARIABLES, "SERVING_PREFIX"):
        assert f"`{name}`" in readme and f"`{name}`" in architecture, name
    documented = "s3://<DataBucketName>/serving/<ModelName>/<version>/tree_scorer.json"
    assert documented in readme
    assert champion_pin.scorer_uri("s3://<DataBucketName>/serving/<ModelName>/", "<version>") == documented
    template = (ROOT / "template.yaml").read_text()
    assert template.count('SERVING_PREFIX: !Sub "s3://${AWS::StackName}-data-${AWS::AccountId}-${AWS::Region}'
                          '/serving/${ModelName}/"') == 2
