"""Issue 4 through the real stack: bad months are rejected and quarantined without
touching Production or the online table; duplicate and concurrent uploads; faults.

Runs after test_serving_rollback_approval.py (see MODULE_ORDER in conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import boto3
import pytest

from streamflow.generator import build_manifest, generate_month, month_csv_bytes, write_month
from streamflow.schema import MANIFEST_NAME
from streamflow_local.stack_client import data_bucket, execution_steps, state_machine_arn, upload_month, wait_for_execution
from streamflow_local.stack import hold_registry, release_registry

from clients import DUPLICATE_UPLOAD, MODEL, alias, aws, registry, wait_for_ingest_log, wait_for_rejection

pytestmark = pytest.mark.integration





def _executions(stack, month: str) -> list[dict]:
    listed = aws(stack, "stepfunctions").list_executions(stateMachineArn=state_machine_arn(stack))["executions"]
    return [e for e in listed if e["name"].startswith(f"{month}-")]


def _online_item(stack, user_id: str) -> dict | None:
    table = boto3.resource("dynamodb", endpoint_url=stack.aws_endpoint, region_name=stack.region,
                           aws_access_key_id="testing", aws_secret_access_key="testing").Table(
        f"{stack.stack_name}-online-features")
    return table.get_item(Key={"user_id": user_id}).get("Item")


def _small_month_files() -> dict[str, bytes]:
    return month_csv_bytes(generate_month(1, n_users=200, seed=7))


def _edit_csv(body: bytes, old: str, new: str, count: int = 1) -> bytes:
    return body.decode().replace(old, new, count).encode()


def _missing_file(files):
    files.pop("labels.csv")
    return files


def _renamed_column(files):
    files["usage_agg_30d.csv"] = _edit_csv(files["usage_agg_30d.csv"], "watch_hours_30d", "watch_hours")
    return files


def _yes_no_booleans(files):
    files["subscriptions.csv"] = _edit_csv(files["subscriptions.csv"], ",True,", ",Yes,", -1)
    return files


def _negative_fee(files):
    lines = files["subscriptions.csv"].decode().splitlines()
    cells = lines[1].split(",")
    cells[6] = "-12.5"
    lines[1] = ",".join(cells)
    files["subscriptions.csv"] = ("\n".join(lines) + "\n").encode()
    return files


def _duplicate_user(files):
    lines = files["payments_agg_90d.csv"].decode().splitlines()
    files["payments_agg_90d.csv"] = ("\n".join(lines + [lines[1]]) + "\n").encode()
    return files


def _not_utf8(files):
    files["users.csv"] = files["users.csv"].replace(b"Male", "Mâle".encode("latin-1"), 1)
    return files


def _single_class(files):
    files["labels.csv"] = _edit_csv(files["labels.csv"], ",True", ",False", -1)
    return files


# (case, make bad files, expected (file, column, rule fragment))
CONTRACT_CASES = [
    ("missing_file", _missing_file, ("labels.csv", "", "required file missing")),
    ("renamed_column", _renamed_column, ("usage_agg_30d.csv", "watch_hours_30d", "required column missing")),
    ("yes_no_booleans", _yes_no_booleans, ("subscriptions.csv", "plan_stream_tv", "must be a boolean")),
    ("negative_fee", _negative_fee, ("subscriptions.csv", "monthly_fee", "must not be negative")),
    ("duplicate_user", _duplicate_user, ("payments_agg_90d.csv", "user_id", "unique")),
    ("not_utf8", _not_utf8, ("users.csv", "", "must be UTF-8")),
    ("single_class", _single_class, ("labels.csv", "churn_label", "both classes")),
]


def _write(folder: Path, files: dict[str, bytes], manifest: bytes | None = None) -> Path:
    folder.mkdir(parents=True)
    for name, body in files.items():
        (folder / name).write_bytes(body)
    body = manifest if manifest is not None else json.dumps(build_manifest(folder.name, files)).encode()
    (folder / MANIFEST_NAME).write_bytes(body)
    return folder


def _rejection(stack, month: str) -> dict:
    return wait_for_rejection(stack, month)[1]


def assert_readable_cause(stack, cause: str) -> None:
    """A Fail cause is one line a person reads: no traceback, no local paths, ≤ 300 chars."""
    assert "\n" not in cause and len(cause) <= 300, cause
    assert "Traceback" not in cause and 'File "' not in cause and "stackTrace" not in cause, cause
    assert str(stack.state_dir) not in cause and "/site-packages/" not in cause and "/work/" not in cause, cause


def _keys(stack, prefix: str) -> list[str]:
    listed = aws(stack, "s3").list_objects_v2(Bucket=data_bucket(stack), Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture(scope="module")
def watched_user(months) -> str:
    lines = (months[1] / "users.csv").read_text().splitlines()
    return lines[1].split(",", 1)[0]


@pytest.mark.parametrize(("number", "case"), list(enumerate(CONTRACT_CASES, start=101)),
                         ids=[c[0] for c in CONTRACT_CASES])
def test_bad_month_is_rejected_quarantined_and_changes_nothing(stack, tmp_path, watched_user, number, case):
    _, make_bad, (file, column, rule) = case
    month = f"month_{number}"
    production, online_before = alias(stack, "Production"), _online_item(stack, watched_user)
    upload = upload_month(stack, _write(tmp_path / month, make_bad(_small_month_files())))
    description = wait_for_execution(stack, upload.execution_arn)
    assert description["status"] == "FAILED"
    assert description["cause"].startswith("Validate failed:") and f"{file}:{column}" in description["cause"]
    assert_readable_cause(stack, description["cause"])
    report = _rejection(stack, month)
    assert report["stage"] == "validate" and report["execution"] == upload.execution_name
    assert any(v["file"] == file and v["column"] == column and rule in v["rule"] for v in report["violations"]), report
    assert _keys(stack, f"months/{month}/") == []
    report_key, _ = wait_for_rejection(stack, month)
    attempt = report_key.rsplit("/", 1)[0] + "/"  # the rejection's own folder
    assert f"{attempt}{MANIFEST_NAME}" in _keys(stack, attempt)
    assert _keys(stack, f"quarantine/{month}/") == sorted(report["quarantined"] + [report_key])
    assert alias(stack, "Production") == production
    assert _online_item(stack, watched_user) == online_before


@pytest.mark.parametrize(
    ("month", "manifest", "rule"),
    [("month_120", b"{not json", "must be valid JSON"),
     ("month_121", json.dumps({"month": "month_121", "files": {
         "users.csv": {"bytes": len(_small_month_files()["users.csv"]),
                       "sha256": hashlib.sha256(_small_month_files()["users.csv"]).hexdigest()},
         "ghost.csv": {"bytes": 1, "sha256": "0" * 64}}}).encode(),
      "listed in the manifest but not in the bucket"),
     ("2026-01", None, "month name must match month_NNN")],
    ids=["manifest_not_json", "manifest_names_missing_file", "bad_month_name"],
)
def test_bad_manifest_is_rejected_at_ingest_without_an_execution(stack, tmp_path, month, manifest, rule):
    files = {"users.csv": _small_month_files()["users.csv"]}
    folder = _write(tmp_path / month, files, manifest)
    s3 = aws(stack, "s3")
    s3.upload_file(str(folder / "users.csv"), data_bucket(stack), f"months/{month}/users.csv")
    s3.put_object(Bucket=data_bucket(stack), Key=f"months/{month}/{MANIFEST_NAME}",
                  Body=(folder / MANIFEST_NAME).read_bytes())
    report = _rejection(stack, month)
    assert report["stage"] == "ingest"
    assert report["violations"][0]["file"] in (MANIFEST_NAME, "ghost.csv") and rule in report["violations"][0]["rule"]
    assert _executions(stack, month) == []
    assert _keys(stack, f"months/{month}/") == []


def test_a_manifest_that_lands_before_its_files_waits_for_them(stack, tmp_path):
    """``aws s3 sync`` sends the manifest beside the files: ingest rejected the month for the
    files not in yet and quarantined those that were, and the rest, arriving after, stayed in
    ``months/``. The files landing a second after the manifest, the month runs."""
    from streamflow.ingest import execution_name
    from streamflow_local.stack_client import execution_arn_for

    month, files = "month_122", _small_month_files()
    folder = _write(tmp_path / month, files)
    s3, bucket = aws(stack, "s3"), data_bucket(stack)

    def files_a_second_later() -> None:  # side by side with the manifest's PUT, as sync sends them
        time.sleep(1.0)
        for name in sorted(files):
            s3.put_object(Bucket=bucket, Key=f"months/{month}/{name}", Body=files[name])

    later = threading.Thread(target=files_a_second_later)
    later.start()
    s3.put_object(Bucket=bucket, Key=f"months/{month}/{MANIFEST_NAME}", Body=(folder / MANIFEST_NAME).read_bytes())
    later.join()
    arn = execution_arn_for(stack, execution_name(month, (folder / MANIFEST_NAME).read_bytes()))
    description = wait_for_execution(stack, arn, timeout=300,
                                     not_started=lambda: _keys(stack, f"quarantine/{month}/") or None)
    assert description.get("status") == "SUCCEEDED", description
    assert _keys(stack, f"quarantine/{month}/") == []


def test_same_month_uploaded_five_times_gives_one_execution_and_one_decision(stack, months):
    before = _executions(stack, "month_002")
    assert len(before) == 1
    duplicates = len(wait_for_ingest_log(stack, "month_002", DUPLICATE_UPLOAD, count=0))
    for _ in range(5):
        upload_month(stack, months[2])
    # Wait until Ingest has answered all five manifests (it logs each after Step Functions
    # answered): only then would a second execution exist, so only then is absence a result.
    wait_for_ingest_log(stack, "month_002", DUPLICATE_UPLOAD, count=duplicates + 5)
    assert _executions(stack, "month_002") == before
    challengers = [v for v in registry(stack).search_model_versions(f"name='{MODEL}'") if v.tags.get("month") == "month_002"]
    assert len(challengers) == 1


def test_months_uploaded_together_decide_in_month_order(stack, monkeypatch):
    """Two months uploaded together: the later one waits (task token, at AwaitEarlierMonths)
    while the earlier one is held at Promote (the test holds the promotion lease), and
    `streamflow status` says what it waits for; then they decide in month order: month_007
    replaces the (weak) champion and month_008 is measured against what it learned."""
    from streamflow import lease
    from streamflow_local.views import executions

    for key, value in stack.client_env().items():
        monkeypatch.setenv(key, value)
    mlflow_client = registry(stack)
    weak = next(v.version for v in mlflow_client.search_model_versions(f"name='{MODEL}'")
                if v.tags.get("month") == "month_000")
    mlflow_client.set_registered_model_alias(MODEL, "Production", weak)
    folders = [write_month(stack.state_dir / "data", m, n_users=3000) for m in (8, 7)]  # the later one first
    with lease.hold(f"{stack.stack_name}-leases", owner="test"):
        later, earlier = [upload_month(stack, folder) for folder in folders]
        _wait_for_state(stack, earlier.execution_arn, "Promote", timeout=300)
        _wait_for_state(stack, later.execution_arn, "AwaitEarlierMonths", timeout=300)
        shown = next(e for e in executions(stack, "month_008") if e["name"] == later.execution_name)
        assert shown["status"] == "RUNNING" and shown["waiting_for"] == ["month_007"]
        assert not any(s["state"] == "DetectDrift" for s in shown["steps"])  # nothing decided before month_007
    results = [wait_for_execution(stack, u.execution_arn) for u in (earlier, later)]
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"], [r.get("cause") for r in results]
    first, second = (json.loads(r["output"]) for r in results)
    assert first["promoted"] is True and first["decision"] == "promote"
    assert second["reference_month"] == "month_007"  # the champion's month once month_007 had decided
    assert second["production_version"] == first["production_version"] == alias(stack, "Production")
    assert alias(stack, "Previous") == weak
    assert [e["month"] for e in executions(stack) if e["month"] in ("month_007", "month_008")] == \
        ["month_007", "month_008"]  # status lists months in month order, whatever the upload order


def _wait_for_state(stack, execution_arn: str, state: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(s["state"] == state for s in execution_steps(stack, execution_arn)):
                return
        except aws(stack, "stepfunctions").exceptions.ExecutionDoesNotExist:
            pass  # Ingest has not started it yet
        time.sleep(0.2)
    raise AssertionError(f"{state} never started")


def test_registry_outage_mid_run_fails_readably_and_keeps_production(stack):
    production = alias(stack, "Production")
    upload = upload_month(stack, write_month(stack.state_dir / "data", 9, n_users=3000))
    _wait_for_state(stack, upload.execution_arn, "BuildFeatures")  # DetectDrift reads the champion first
    hold_registry(stack)
    try:
        description = wait_for_execution(stack, upload.execution_arn, timeout=300)
    finally:
        release_registry(stack)
    assert description["status"] == "FAILED"
    assert description["error"] == "RegistryUnavailable"
    assert "failed: " in description["cause"] and "MLflow registry unreachable" in description["cause"]
    assert_readable_cause(stack, description["cause"])
    retries = [e for e in aws(stack, "stepfunctions").get_execution_history(
        executionArn=upload.execution_arn, maxResults=1000)["events"] if e["type"] == "LambdaFunctionFailed"]
    assert len(retries) >= 2  # retried with backoff before giving up
    assert alias(stack, "Production") == production


def test_a_handler_that_times_out_fails_with_the_step_named(stack):
    lam = aws(stack, "lambda")
    name = f"{stack.stack_name}-drift"
    timeout = lam.get_function_configuration(FunctionName=name)["Timeout"]
    lam.update_function_configuration(FunctionName=name, Timeout=1)
    try:
        upload = upload_month(stack, write_month(stack.state_dir / "data", 10, n_users=3000))
        description = wait_for_execution(stack, upload.execution_arn)
    finally:
        lam.update_function_configuration(FunctionName=name, Timeout=timeout)
    assert description["status"] == "FAILED"
    assert description["error"] == "Sandbox.Timedout", description.get("cause")
    assert description["cause"].startswith("DetectDrift failed:") and "timed out after 1.00 seconds" in description["cause"]
    assert_readable_cause(stack, description["cause"])
    # the Parallel and the branch beside the failed one ended with the execution: none RUNNING
    steps = execution_steps(stack, upload.execution_arn)
    assert steps and all(s["status"] != "RUNNING" for s in steps), steps
    assert {s["state"]: s["status"] for s in steps}["FeaturesReady"] == "FAILED"


def test_an_execution_that_fails_after_validate_leaves_none_of_its_checked_tables_and_runs_again(stack):
    """Validate hands BuildFeatures the tables it checked (``checked/<month>/<execution>/``),
    and BuildFeatures deletes them; an execution that fails before that never gets there, so
    its end (EventBridge → the order function) deletes them, and Production stays. Uploaded
    again unchanged, the month runs again."""
    from streamflow import checked_tables

    production = alias(stack, "Production")
    lam = aws(stack, "lambda")
    name = f"{stack.stack_name}-features"
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=name,
                                      Environment={"Variables": {**variables, "DATA_BUCKET": "no-such-bucket"}})
    try:
        upload = upload_month(stack, write_month(stack.state_dir / "data", 12, n_users=3000))
        description = wait_for_execution(stack, upload.execution_arn)
    finally:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    assert description["status"] == "FAILED"
    assert description["cause"].startswith("BuildFeatures failed"), description["cause"]
    validated = next(json.loads(e["stateExitedEventDetails"]["output"])
                     for e in aws(stack, "stepfunctions").get_execution_history(
                         executionArn=upload.execution_arn, maxResults=1000)["events"]
                     if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "Validate")
    folder = validated["validation"]["checked_tables"]
    assert folder == checked_tables.folder(upload.month, upload.execution_name)  # Validate wrote them

    s3 = aws(stack, "s3")
    deadline, left = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        left = s3.list_objects_v2(Bucket=data_bucket(stack), Prefix=folder).get("Contents", [])
        if not left:
            break
        time.sleep(0.2)
    assert left == [], [o["Key"] for o in left]
    assert alias(stack, "Production") == production

    # the cause mended, the same files uploaded again run the month again, as its next
    # attempt (the failed execution keeps its name; this upload had found it and stopped)
    again = upload_month(stack, stack.state_dir / "data" / upload.month)
    assert again.execution_name == f"{upload.execution_name}-r2"
    rerun = wait_for_execution(stack, again.execution_arn, timeout=600)
    assert rerun["status"] == "SUCCEEDED", rerun.get("cause")
    assert not s3.list_objects_v2(Bucket=data_bucket(stack), Prefix=f"quarantine/{upload.month}/").get("Contents")

