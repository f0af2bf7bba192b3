"""The churn API's handler (functions/api/app.py through Mangum, as API Gateway calls it)
with the online feature table on a real DynamoDB endpoint (the emulator's moto server):
/health and /predict/batch with and without a champion, and the batch's limits.

The registry is unreachable here (a closed port), so the API starts with no model, as it
does on a fresh stack. For the tests that need a champion, the API's ``champion`` holder
is replaced by one that hands out a known champion: a one-split TreeScorer whose
probabilities are worked out by hand below (loading one from MLflow is the integration
tests' part).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from mangum import Mangum

from aws_endpoint import create_table, endpoint_env, free_port, moto_endpoint
from streamflow import online_store
from streamflow.features import normalise_feature_types
from streamflow.schema import MODEL_FEATURES
from streamflow.scorer import TreeScorer
from streamflow.served_model import Champion
from streamflow_local.gateway import proxy_event

APP = Path(__file__).resolve().parents[2] / "functions" / "api" / "app.py"
MODULE = "streamflow_unit_api_app"
TABLE = "unit-online-features"
# months_active <= 10 → raw +2 (churns); 11 → raw 0 (probability 0.5, counted as churn); more → raw -2.
STUMP = TreeScorer([("months_active", None)], 0.0, [
    ([0, 0, 0, 0, 0], [10.0, 0.0, 11.0, 0.0, 0.0], [False] * 5, [1, 0, 3, 0, 0], [2, 0, 4, 0, 0],
     [False, True, False, True, True], [0.0, 2.0, 0.0, 0.0, -2.0]),
])
MONTHS = {"0001-AAAAA": 3, "0002-BBBBB": 11, "0003-CCCCC": 40}
P_CHURN = 1 / (1 + math.exp(-2))  # 0.880797…


@pytest.fixture(scope="module")
def api():
    """The API module imported as Lambda's init does, with the stack's environment."""
    with moto_endpoint() as endpoint, pytest.MonkeyPatch.context() as env:
        for key, value in endpoint_env(endpoint).items():
            env.setenv(key, value)
        env.setenv("FEATURE_TABLE", TABLE)
        env.setenv("MODEL_NAME", "streamflow_churn")
        env.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nobody listens
        env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        env.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        env.delenv("CHAMPION_VERSION", raising=False)
        create_table(endpoint, TABLE, "user_id")
        frame = pd.DataFrame([{**{c: 0 for c in MODEL_FEATURES}, "net_service": "DSL", "months_active": m}
                              for m in MONTHS.values()], index=pd.Index(list(MONTHS), name="user_id"))
        online_store.write_online_features(TABLE, "month_000", normalise_feature_types(frame))
        spec = importlib.util.spec_from_file_location(MODULE, APP)
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE] = module  # as an import does: pydantic resolves the models' annotations there
        try:
            spec.loader.exec_module(module)
            yield module
        finally:
            del sys.modules[MODULE]


class _Holder:
    def __init__(self, champion: Champion):
        self._champion, self.last_error = champion, None

    def get(self) -> Champion:
        return self._champion


@pytest.fixture
def with_champion(api, monkeypatch):
    monkeypatch.setattr(api, "champion", _Holder(Champion(version="7", model=None, scorer=STUMP)))
    return api


def _call(api, method: str, path: str, payload=None) -> tuple[int, dict]:
    body = b"" if payload is None else json.dumps(payload).encode()
    response = Mangum(api.app, lifespan="off")(
        proxy_event(method, path, {"Content-Type": "application/json"}, body), None)
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_health_without_a_model_says_so_and_why(api):
    status, body = _call(api, "GET", "/health")
    assert status == 200
    assert body["status"] == "no_model" and body["model_version"] is None
    assert body["model_name"] == "streamflow_churn"
    assert body["detail"].startswith("could not load the champion")


def test_batch_without_a_model_is_503_json(api):
    status, body = _call(api, "POST", "/predict/batch", {"user_ids": ["0001-AAAAA"]})
    assert status == 503
    assert body["error"]["code"] == "no_model" and "could not load the champion" in body["error"]["message"]


def test_health_with_a_champion(with_champion):
    status, body = _call(with_champion, "GET", "/health")
    assert (status, body["status"], body["model_version"], body["detail"]) == (200, "ok", "7", None)


def test_batch_scores_known_users_and_lists_unknown_ones_once(with_champion):
    ids = ["0003-CCCCC", "9999-ZZZZZ", "0001-AAAAA", "0002-BBBBB", "0001-AAAAA", "9999-ZZZZZ", "8888-YYYYY"]
    status, body = _call(with_champion, "POST", "/predict/batch", {"user_ids": ids})
    assert status == 200
    assert body["model_version"] == "7"
    assert body["predictions"] == [
        {"user_id": "0003-CCCCC", "churn_probability": round(1 - P_CHURN, 6), "churn_prediction": False},
        {"user_id": "0001-AAAAA", "churn_probability": round(P_CHURN, 6), "churn_prediction": True},
        {"user_id": "0002-BBBBB", "churn_probability": 0.5, "churn_prediction": True},  # 0.5 is churn
    ]
    assert body["unknown_user_ids"] == ["9999-ZZZZZ", "8888-YYYYY"]


def test_a_batch_of_only_unknown_users_is_not_an_error(with_champion):
    status, body = _call(with_champion, "POST", "/predict/batch", {"user_ids": ["9999-ZZZZZ", "x" * 64]})
    assert status == 200
    assert body["predictions"] == [] and body["unknown_user_ids"] == ["9999-ZZZZZ", "x" * 64]


def test_a_batch_of_1000_ids_is_answered(with_champion):
    ids = list(MONTHS) + [f"{i:04d}-QQQQQ" for i in range(1000 - len(MONTHS))]
    status, body = _call(with_champion, "POST", "/predict/batch", {"user_ids": ids})
    assert status == 200
    assert [p["user_id"] for p in body["predictions"]] == list(MONTHS)
    assert len(body["unknown_user_ids"]) == 1000 - len(MONTHS)


@pytest.mark.parametrize("user_ids", [[f"{i:04d}-QQQQQ" for i in range(1001)], []],
                         ids=["1001_ids", "no_ids"])
def test_a_batch_of_more_than_1000_or_no_ids_is_422(api, with_champion, user_ids):
    status, body = _call(with_champion, "POST", "/predict/batch", {"user_ids": user_ids})
    assert status == 422
    assert body["error"]["code"] == "invalid_request"
    assert body["error"]["problems"][0]["loc"] == ["body", "user_ids"]
    assert api.MAX_BATCH == 1000


@pytest.mark.parametrize("bad", ["", "x" * 65])
def test_an_id_of_the_wrong_length_fails_the_whole_batch_with_422(with_champion, bad):
    status, body = _call(with_champion, "POST", "/predict/batch", {"user_ids": ["0001-AAAAA", bad]})
    assert status == 422
    assert body == {"error": {"code": "invalid_request", "message": "every user_id must have 1 to 64 characters"}}


@pytest.mark.parametrize("payload", [{"user_ids": "0001-AAAAA"}, {"user_ids": [1, 2]}, {"ids": ["0001-AAAAA"]}])
def test_a_malformed_batch_is_422_json(with_champion, payload):
    status, body = _call(with_champion, "POST", "/predict/batch", payload)
    assert status == 422 and body["error"]["code"] == "invalid_request"


def _raw_call(api, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> dict:
    return Mangum(api.app, lifespan="off")(proxy_event(method, path, headers, body), None)


def test_a_body_sent_as_another_content_type_is_415_json_naming_it(with_champion):
    """curl -d sends application/x-www-form-urlencoded unless told: the answer says to send
    JSON, where it said "Input should be a valid dictionary" (422) before."""
    response = _raw_call(with_champion, "POST", "/predict", {"Content-Type": "text/plain"}, b'{"user_id": "u1"}')
    assert response["statusCode"] == 415 and response["headers"]["content-type"] == "application/json"
    body = json.loads(response["body"])["error"]
    assert body["code"] == "unsupported_media_type" and "Content-Type: application/json" in body["message"]
    assert "text/plain" in body["message"]
    charset = _raw_call(with_champion, "POST", "/predict", {"Content-Type": "application/json; charset=utf-8"},
                        b'{"user_id": ""}')
    assert charset["statusCode"] == 422  # JSON with a parameter is JSON: its own validation answers


def test_a_wrong_method_is_405_json_with_allow(with_champion):
    response = _raw_call(with_champion, "GET", "/predict", {})
    assert response["statusCode"] == 405 and response["headers"]["content-type"] == "application/json"
    assert response["headers"]["allow"] == "POST"
    assert json.loads(response["body"])["error"]["code"] == "http_error"


def test_a_trailing_slash_is_an_unknown_path_not_a_redirect(with_champion):
    """Starlette's redirect named https:// on the plain-HTTP local gateway and would drop
    API Gateway's stage (/Prod) on AWS."""
    for path in ("/predict/", "/health/"):
        response = _raw_call(with_champion, "POST" if path == "/predict/" else "GET", path,
                             {"Content-Type": "application/json"}, b'{"user_id": "u1"}' if path == "/predict/" else b"")
        assert response["statusCode"] == 404 and response["headers"]["content-type"] == "application/json", path
        assert "location" not in response["headers"]
