"""The loop through the real local stack: S3 upload → ingest → Step Functions → handlers
→ MLflow registry → API over HTTP.

The tests run in file order and share one stack: no champion yet → month_000 makes the
first one → month_001 (concept drift, measured against month_000: the champion's month)
replaces it → month_002 (same concept), measured against a fixed month_000, retrains but
does not replace it.
"""

from __future__ import annotations

import json
import shutil

import pytest
import requests

from streamflow.schema import MANIFEST_NAME
from streamflow_local.stack_client import (
    api_headers,
    data_bucket,
    first_user,
    grep_logs,
    state_machine_arn,
    upload_month,
    wait_for_execution,
)

from clients import DUPLICATE_UPLOAD, MODEL, alias, aws, registry, wait_for_ingest_log
from month_tools import reference_mode

pytestmark = pytest.mark.integration



def _run(stack, folder):
    upload = upload_month(stack, folder)
    description = wait_for_execution(stack, upload.execution_arn, timeout=600)
    output = json.loads(description.get("output") or "{}")
    return upload, description, output


def _executions(stack, month: str) -> list[dict]:
    sfn = aws(stack, "stepfunctions")
    listed = sfn.list_executions(stateMachineArn=state_machine_arn(stack))["executions"]
    return [e for e in listed if e["name"].startswith(f"{month}-")]


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_api_without_a_valid_key_is_forbidden(stack, key):
    headers = {"x-api-key": key} if key else {}
    response = requests.post(f"{stack.api_url}/predict", json={"user_id": "0000-AAAAA"}, headers=headers, timeout=60)
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}


def test_predict_before_any_champion_is_503_json(stack):
    response = requests.post(f"{stack.api_url}/predict", json={"user_id": "0000-AAAAA"},
                             headers=api_headers(stack), timeout=120)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_model"


def test_first_month_upload_starts_one_execution_that_crowns_a_champion(stack, months):
    upload, description, summary = _run(stack, months[0])
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert [e["name"] for e in _executions(stack, "month_000")] == [upload.execution_name]
    assert summary["retrained"] is True and summary["promoted"] is True
    assert alias(stack, "Production") == summary["production_version"] == summary["challenger_version"]
    assert alias(stack, "Previous") is None
    # no champion yet: nothing to measure drift against (ReferenceMonth=champion, the default)
    assert summary["reference_month"] is None and summary["report_key"] is None
    messages = [r["message"] for r in grep_logs(stack, execution=upload.execution_name)]
    assert any(m.startswith("[SUMMARY] month=month_000") and m.endswith(" reference=none") for m in messages)


def test_drifted_month_retrains_and_better_challenger_moves_production(stack, months):
    champion = alias(stack, "Production")
    upload, description, summary = _run(stack, months[1])
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert summary["drift_share"] >= 0.02
    assert summary["retrained"] and summary["promoted"]
    assert alias(stack, "Production") == summary["challenger_version"] != champion
    assert alias(stack, "Previous") == champion
    messages = [r["message"] for r in grep_logs(stack, execution=upload.execution_name)]
    # measured against what the champion learned: month_000, the month version 1 was trained on
    assert summary["reference_month"] == "month_000"
    assert any(m.startswith("RETRAINING_TRIGGERED month=month_001") and m.endswith(" reference=month_000")
               for m in messages), messages
    compare = [m for m in messages if m.startswith("[COMPARE]")]
    assert compare and compare[0].endswith("promote=True")
    assert any(m.startswith("[SUMMARY] month=month_001") and "promoted=True" in m
               and m.endswith(f"production_version={summary['production_version']} reference=month_000")
               for m in messages), messages
    version = registry(stack).get_model_version(MODEL, summary["challenger_version"])
    assert version.tags["month"] == "month_001" and version.tags["reference_month"] == "month_000"
    assert version.tags["decision"] == "promote"
    assert float(version.tags["decision_new_auc"]) >= float(version.tags["decision_prod_auc"]) + 0.01


def test_drift_report_is_kept_in_s3(stack):
    s3 = aws(stack, "s3")
    listed = s3.list_objects_v2(Bucket=data_bucket(stack), Prefix="reports/evidently/drift_month_001_")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert len(keys) == 1 and keys[0].endswith(".html")
    body = s3.get_object(Bucket=data_bucket(stack), Key=keys[0])["Body"].read()
    assert b"<html" in body[:2000].lower() and len(body) > 100_000


def test_predict_over_http_is_answered_by_the_champion(stack, months):
    user_id = first_user(months[1])
    response = requests.post(f"{stack.api_url}/predict", json={"user_id": user_id},
                             headers=api_headers(stack), timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == user_id
    assert body["model_version"] == alias(stack, "Production")
    assert 0.0 <= body["churn_probability"] <= 1.0
    assert body["churn_prediction"] == (body["churn_probability"] >= 0.5)
    health = requests.get(f"{stack.api_url}/health", headers=api_headers(stack), timeout=60).json()
    assert health["status"] == "ok" and health["model_version"] == body["model_version"]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [({"user_id": "9999-ZZZZZ"}, 404, "unknown_user"), ({"user": 1}, 422, "invalid_request"),
     ("not json", 422, "invalid_request")],
)
def test_api_errors_are_json_with_proper_status(stack, payload, status, code):
    data = payload if isinstance(payload, str) else json.dumps(payload)
    response = requests.post(f"{stack.api_url}/predict", data=data,
                             headers={"Content-Type": "application/json", **api_headers(stack)}, timeout=60)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_api_answers_a_wrong_type_method_or_path_with_json_through_the_gateway(stack):
    """What curl gets when it is used carelessly: ``-d`` without a JSON Content-Type, a GET,
    a trailing slash."""
    url, key = f"{stack.api_url}/predict", api_headers(stack)
    form = requests.post(url, data='{"user_id": "0001-AAAAA"}', timeout=60,
                         headers={"Content-Type": "application/x-www-form-urlencoded", **key})
    assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"
    get = requests.get(url, headers=key, timeout=60)
    assert get.status_code == 405 and get.headers["allow"] == "POST" and get.json()["error"]["code"] == "http_error"
    slash = requests.post(f"{url}/", json={"user_id": "0001-AAAAA"}, headers=key, timeout=60, allow_redirects=False)
    assert slash.status_code == 404 and "location" not in slash.headers and slash.json()["error"]["code"] == "http_error"


def test_api_reads_a_chunked_body_and_refuses_one_over_api_gateways_limit(stack):
    """A streamed body (``Transfer-Encoding: chunked``) reached the function empty (422 for a
    good request); a 60 MB body was served, where API Gateway refuses one over 10 MB."""
    url, key = f"{stack.api_url}/predict", {"Content-Type": "application/json", **api_headers(stack)}
    streamed = requests.post(url, data=iter([b'{"user_id": ', b'"0001-AAAAA"}']), headers=key, timeout=60)
    assert streamed.request.headers.get("Transfer-Encoding") == "chunked"
    answer = streamed.json()  # the body arrived: served, an unknown user or no champion yet, not a 422
    assert streamed.status_code == 200 or answer["error"]["code"] in ("unknown_user", "no_model"), answer
    huge = requests.post(url, data=b"x" * (10 * 1024 * 1024 + 1), headers=key, timeout=60)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    assert requests.post(url, json={"user_id": "0001-AAAAA"}, headers=api_headers(stack), timeout=60).status_code != 413


def test_challenger_that_is_not_better_leaves_production(stack, months):
    """month_002 has month_001's distributions: against the champion's month it does not
    drift, so ReferenceMonth is fixed to month_000 for it (a mode of its own) to get a
    challenger that must not replace the champion."""
    champion = alias(stack, "Production")
    with reference_mode(stack, "month_000"):
        upload, description, summary = _run(stack, months[2])
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert summary["reference_month"] == "month_000"
    assert summary["retrained"] is True and summary["promoted"] is False
    assert alias(stack, "Production") == champion == summary["production_version"]
    compare = [r["message"] for r in grep_logs(stack, ("[COMPARE]",), execution=upload.execution_name)]
    assert compare and compare[0].endswith("promote=False")
    tags = registry(stack).get_model_version(MODEL, summary["challenger_version"]).tags
    assert tags["decision"] == "keep_champion" and tags["reference_month"] == "month_000"


def test_same_manifest_delivered_again_starts_no_second_execution(stack, months):
    before = _executions(stack, "month_002")
    duplicates = len(wait_for_ingest_log(stack, "month_002", DUPLICATE_UPLOAD, count=0))
    s3 = aws(stack, "s3")
    body = (months[2] / MANIFEST_NAME).read_bytes()
    for _ in range(3):
        s3.put_object(Bucket=data_bucket(stack), Key=f"months/month_002/{MANIFEST_NAME}", Body=body)
    # Absence means something only once Ingest has handled all three events: it logs each
    # after Step Functions answered, so a second execution would exist by then.
    wait_for_ingest_log(stack, "month_002", DUPLICATE_UPLOAD, count=duplicates + 3)
    assert [e["name"] for e in _executions(stack, "month_002")] == [e["name"] for e in before]
    assert len(before) == 1


def test_malformed_month_fails_with_a_named_rule_and_keeps_production(stack, months, tmp_path):
    champion = alias(stack, "Production")
    bad = tmp_path / "month_003"
    shutil.copytree(months[2], bad)
    usage = (bad / "usage_agg_30d.csv").read_text().replace("watch_hours_30d", "watch_hours", 1)
    (bad / "usage_agg_30d.csv").write_text(usage)
    from streamflow.generator import build_manifest

    files = {p.name: p.read_bytes() for p in bad.iterdir() if p.name != MANIFEST_NAME}
    (bad / MANIFEST_NAME).write_text(json.dumps(build_manifest("month_003", files)))
    _, description, _ = _run(stack, bad)
    assert description["status"] == "FAILED"
    assert "Validate failed" in description["cause"]
    assert "usage_agg_30d.csv:watch_hours_30d: required column missing" in description["cause"]
    assert alias(stack, "Production") == champion
