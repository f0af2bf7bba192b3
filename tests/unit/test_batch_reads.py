"""/predict/batch gives exactly the answers of /predict asked one user at a time (the
batch reads the table with parallel BatchGetItem calls and scores with the compiled
trees; /predict with one GetItem), and the online store's raw-JSON reads return what
botocore's parser returns. Real DynamoDB endpoint: the emulator's moto server."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import boto3
import pytest
from mangum import Mangum

from aws_endpoint import create_table, free_port, moto_endpoint_in_env
from streamflow import online_store
from streamflow.served_model import Champion
from streamflow_local.gateway import proxy_event
from test_scorer import _frame, _model
from streamflow.scorer_export import from_pipeline

APP = Path(__file__).resolve().parents[2] / "functions" / "api" / "app.py"
MODULE = "streamflow_unit_api_batch_reads"
TABLE = "unit-batch-reads"
USERS = 260  # three BatchGetItem calls of up to 100 keys: the parallel path


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint_in_env() as url:
        yield url


@pytest.fixture(scope="module")
def api(endpoint):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FEATURE_TABLE", TABLE)
        env.setenv("MODEL_NAME", "streamflow_churn")
        env.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nobody listens
        env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        env.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        env.delenv("CHAMPION_VERSION", raising=False)
        create_table(endpoint, TABLE, "user_id")
        online_store.write_online_features(TABLE, "month_000", _frame().head(USERS))
        spec = importlib.util.spec_from_file_location(MODULE, APP)
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE] = module
        try:
            spec.loader.exec_module(module)
            scorer = from_pipeline(_model())
            assert scorer is not None

            class Holder:
                last_error = None

                def get(self) -> Champion:
                    return Champion(version="3", model=None, scorer=scorer)

            env.setattr(module, "champion", Holder())
            yield module
        finally:
            del sys.modules[MODULE]


def _call(api, path: str, payload) -> tuple[int, dict]:
    response = Mangum(api.app, lifespan="off")(
        proxy_event("POST", path, {"Content-Type": "application/json"}, json.dumps(payload).encode()), None)
    return response["statusCode"], json.loads(response["body"])


def test_batch_answers_are_those_of_predict_one_by_one(api):
    users = [str(u) for u in _frame().head(USERS).index]
    asked = users[::-1] + ["9999-NOONE", users[5]]  # order, an unknown id and a repeat
    status, batch = _call(api, "/predict/batch", {"user_ids": asked})
    assert status == 200
    assert batch["model_version"] == "3" and batch["unknown_user_ids"] == ["9999-NOONE"]
    assert [p["user_id"] for p in batch["predictions"]] == users[::-1]  # request order, once each
    one_by_one = []
    for user in users[::-1]:
        status, single = _call(api, "/predict", {"user_id": user})
        assert status == 200
        one_by_one.append({k: single[k] for k in ("user_id", "churn_probability", "churn_prediction")})
    assert batch["predictions"] == one_by_one
    assert len({p["churn_probability"] for p in one_by_one}) > 10  # not one answer for everyone
    assert _call(api, "/predict", {"user_id": "9999-NOONE"})[0] == 404


def test_raw_json_reads_return_what_botocore_parses(endpoint):
    """Every attribute type, binary included (that answer is parsed by botocore, as before)."""
    create_table(endpoint, "unit-raw-reads", "user_id")
    plain = boto3.client("dynamodb")  # botocore's own parser
    items = [
        {"user_id": {"S": "u1"}, "fee": {"N": "70.35"}, "senior": {"BOOL": True}, "none": {"NULL": True},
         "tags": {"SS": ["a", "b"]}, "nums": {"NS": ["1", "2.5"]},
         "nested": {"M": {"x": {"L": [{"N": "1"}, {"S": "y \"B\" z"}]}}}},
        {"user_id": {"S": "u2"}, "fee": {"N": "-0.0"}, "text": {"S": "ü \u2028 \"quoted\""}},
        {"user_id": {"S": "u3"}, "blob": {"B": b"\x00\x01raw"}, "blobs": {"BS": [b"a", b"b"]}},
    ]
    plain.batch_write_item(RequestItems={"unit-raw-reads": [{"PutRequest": {"Item": i}} for i in items]})
    fast = online_store._client()
    for item in items:
        key = {"user_id": item["user_id"]}
        got = fast.get_item(TableName="unit-raw-reads", Key=key)
        assert got["Item"] == plain.get_item(TableName="unit-raw-reads", Key=key)["Item"] == item
    keys = [{"user_id": {"S": u}} for u in ("u1", "u2", "u3", "nobody")]
    ours = fast.batch_get_item(RequestItems={"unit-raw-reads": {"Keys": keys}})["Responses"]["unit-raw-reads"]
    theirs = plain.batch_get_item(RequestItems={"unit-raw-reads": {"Keys": keys}})["Responses"]["unit-raw-reads"]
    by_id = lambda rows: sorted(rows, key=lambda r: r["user_id"]["S"])  # noqa: E731
    assert by_id(ours) == by_id(theirs) == items
    assert fast.get_item(TableName="unit-raw-reads", Key={"user_id": {"S": "nobody"}}).get("Item") is None
    with pytest.raises(fast.exceptions.ResourceNotFoundException):  # errors are parsed as before
        fast.get_item(TableName="no-such-table", Key={"user_id": {"S": "u1"}})


def test_reads_of_more_keys_than_one_call_takes_merge_every_answer(endpoint):
    create_table(endpoint, "unit-many-reads", "user_id")
    frame = _frame().head(250)
    online_store.write_online_features("unit-many-reads", "month_000", frame)
    ids = [str(u) for u in frame.index]
    rows = online_store.read_online_rows("unit-many-reads", ids + ["9999-NOONE"] + ids[:3])
    assert list(rows) == ids  # request order, duplicates once, unknown left out
    assert all(rows[u] == online_store.read_online_row("unit-many-reads", u) for u in ids)
