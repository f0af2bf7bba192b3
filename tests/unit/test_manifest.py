"""The manifest contract at ingest: schema, checksums, the policy rule, and a quarantine
for every way ingest can fail. S3 and Step Functions are moto's, in process."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from pathlib import Path

import boto3
import jsonschema
import pytest
from moto import mock_aws

from streamflow import storage
from streamflow.checksums import full_object_sha256, read_verified, verified_key
from streamflow.generator import build_manifest
from streamflow.ingest import ManifestError, MonthUpload, check_manifest, start_month_execution
from streamflow.manifest import POLICY_ALIASES, POLICY_KEYS, json_schema, manifest_for_folder, parse
from streamflow.quarantine import newest_report_key, newest_report_keys
from streamflow.settings import Settings
from streamflow.violations import Violation

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "data-bucket"
MONTH = "month_005"
FILES = {"users.csv": b"user_id,x\n0001-ABCDE,1\n", "labels.csv": b"user_id,churn_label\n0001-ABCDE,True\n"}


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    storage.s3.cache_clear()
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    storage.s3.cache_clear()


def _put_month(s3, files=FILES, manifest=None, month=MONTH, checksum=True) -> MonthUpload:
    for name, body in files.items():
        extra = {"ChecksumAlgorithm": "SHA256"} if checksum else {}
        s3.put_object(Bucket=BUCKET, Key=f"months/{month}/{name}", Body=body, **extra)
    body = manifest if isinstance(manifest, bytes) else json.dumps(manifest or build_manifest(month, files)).encode()
    s3.put_object(Bucket=BUCKET, Key=f"months/{month}/_MANIFEST.json", Body=body)
    return MonthUpload(BUCKET, month, f"months/{month}/_MANIFEST.json")


def _body(s3, upload: MonthUpload) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=upload.manifest_key)["Body"].read()


# --- checksums ----------------------------------------------------------------------------------


@pytest.mark.parametrize("checksum", [True, False], ids=["s3_checksum", "streamed"])
def test_a_month_whose_bytes_match_is_accepted(s3, checksum):
    upload = _put_month(s3, checksum=checksum)
    accepted = check_manifest(upload, _body(s3, upload))
    assert accepted.manifest.month == MONTH and sorted(accepted.manifest.files) == sorted(FILES)
    assert sorted(accepted.digests) == sorted(FILES)
    assert {d.method for d in accepted.digests.values()} == {"s3-checksum" if checksum else "streamed"}


@pytest.mark.parametrize("checksum", [True, False], ids=["s3_checksum", "streamed"])
def test_a_tampered_file_of_the_same_size_is_refused_naming_both_digests(s3, checksum):
    manifest = build_manifest(MONTH, FILES)
    tampered = dict(FILES, **{"labels.csv": FILES["labels.csv"].replace(b"True", b"Fals")})
    assert len(tampered["labels.csv"]) == len(FILES["labels.csv"])
    upload = _put_month(s3, tampered, manifest, checksum=checksum)
    with pytest.raises(ManifestError) as caught:
        check_manifest(upload, _body(s3, upload))
    (violation,) = caught.value.violations
    assert (violation.file, violation.column, violation.rule) == ("labels.csv", "", "sha256 differs from the manifest")
    assert violation.example == (f"expected {hashlib.sha256(FILES['labels.csv']).hexdigest()}, "
                                 f"actual {hashlib.sha256(tampered['labels.csv']).hexdigest()}")


def test_a_file_of_another_size_is_refused_by_its_size(s3):
    """The size is compared first (S3 says it without reading a byte): the report says so."""
    manifest = build_manifest(MONTH, FILES)
    upload = _put_month(s3, dict(FILES, **{"users.csv": FILES["users.csv"] + b"0002-FGHIJ,2\n"}), manifest)
    reads: list[str] = []
    storage.s3().meta.events.register("before-call.s3.GetObject", lambda **kw: reads.append(kw["params"]["Key"]))
    with pytest.raises(ManifestError) as caught:
        check_manifest(upload, _body(s3, upload))
    assert reads == [], "a file of the wrong size is refused on HeadObject's word, not read"
    assert caught.value.violations == [Violation("users.csv", "", "size differs from the manifest",
                                                 f"{len(FILES['users.csv']) + 13} bytes, manifest says "
                                                 f"{len(FILES['users.csv'])}")]


def test_a_size_that_differs_is_answered_without_reading_the_bytes(s3):
    """A 100 MB file of the wrong size is refused on S3's word (HeadObject), not streamed."""
    from streamflow.checksums import ObjectDigest, object_digest

    s3.put_object(Bucket=BUCKET, Key="k", Body=b"12345")
    sha = hashlib.sha256(b"12345").hexdigest()
    assert object_digest(BUCKET, "k", sha, 6) == ObjectDigest(5, "", "not read (size differs)")
    assert object_digest(BUCKET, "k", sha, 5) == ObjectDigest(5, sha, "streamed")
    assert object_digest(BUCKET, "missing", sha, 5) is None


def test_a_multipart_upload_is_hashed_from_its_bytes(s3):
    """A multipart upload's checksum is composite (of the parts): ingest reads the bytes."""
    big = {"users.csv": b"u" * (6 * 1024 * 1024)}
    from boto3.s3.transfer import TransferConfig

    s3.upload_fileobj(io.BytesIO(big["users.csv"]), BUCKET, f"months/{MONTH}/users.csv",
                      ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                      Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
    upload = _put_month(s3, {}, build_manifest(MONTH, big))
    assert check_manifest(upload, _body(s3, upload)).digests["users.csv"].sha256 == hashlib.sha256(big["users.csv"]).hexdigest()


@pytest.mark.parametrize(("head", "expected"), [
    ({"ChecksumSHA256": base64.b64encode(b"\x01" * 32).decode()}, "01" * 32),
    ({"ChecksumSHA256": base64.b64encode(b"\x01" * 32).decode(), "ChecksumType": "FULL_OBJECT"}, "01" * 32),
    ({"ChecksumSHA256": base64.b64encode(b"\x01" * 32).decode() + "-3", "ChecksumType": "COMPOSITE"}, None),
    ({"ChecksumSHA256": base64.b64encode(b"\x01" * 32).decode(), "ChecksumType": "COMPOSITE"}, None),
    ({"ChecksumCRC32": "AAAAAA=="}, None),
    ({"ChecksumSHA256": "not base64!"}, None),
    ({"ChecksumSHA256": "*" + base64.b64encode(b"\x01" * 32).decode()}, None),  # base64 with a stray character
    ({"ChecksumSHA256": base64.b64encode(b"\x01" * 16).decode()}, None),  # not 32 bytes: not a SHA-256
    ({}, None),
])
def test_only_a_full_object_sha256_from_s3_counts(head, expected):
    assert full_object_sha256(head) == expected


@pytest.mark.parametrize(("change", "rule"), [
    (lambda m: m["files"]["users.csv"].pop("sha256"), "files.users.csv.sha256"),
    (lambda m: m["files"]["users.csv"].update(sha256="ABC"), "files.users.csv.sha256"),
    (lambda m: m["files"]["users.csv"].update(bytes="12"), "files.users.csv.bytes"),
    (lambda m: m.pop("month"), "month"),
    (lambda m: m.update(files={}), "files"),
    (lambda m: m.update(month="month_006"), "month"),
])
def test_a_manifest_that_breaks_its_schema_is_refused(s3, change, rule):
    manifest = build_manifest(MONTH, FILES)
    change(manifest)
    upload = _put_month(s3, FILES, manifest)
    with pytest.raises(ManifestError) as caught:
        check_manifest(upload, _body(s3, upload))
    assert any(v.column == rule for v in caught.value.violations), caught.value.violations


def test_files_in_the_folder_must_all_be_listed_and_listed_files_must_be_there(s3):
    manifest = build_manifest(MONTH, {"users.csv": FILES["users.csv"]})
    upload = _put_month(s3, FILES, manifest)
    with pytest.raises(ManifestError) as caught:
        check_manifest(upload, _body(s3, upload))
    assert caught.value.violations == [Violation("labels.csv", "", "file is in the month's folder but not in the manifest")]
    upload = _put_month(s3, {"users.csv": FILES["users.csv"]}, build_manifest(MONTH, FILES), month="month_006")
    with pytest.raises(ManifestError) as caught:
        check_manifest(upload, _body(s3, upload).replace(b"month_005", b"month_006"))
    assert caught.value.violations == [Violation("labels.csv", "", "listed in the manifest but not in the bucket")]


# --- policy belongs to the stack ----------------------------------------------------------------

GOOD_VALUES = {"threshold": 0.5, "delta": 0.02, "reference_month": "month_000", "require_approval": True,
               "approval_timeout_seconds": 600}


@pytest.mark.parametrize("key", list(POLICY_KEYS) + list(POLICY_ALIASES))
@pytest.mark.parametrize("value", ["abc", 0.5], ids=["bad_value", "good_value"])
def test_a_policy_key_is_refused_naming_it_and_where_policy_is_set(s3, key, value):
    upload = _put_month(s3, manifest=dict(build_manifest(MONTH, FILES), **{key: value}))
    with pytest.raises(ManifestError) as caught:
        check_manifest(upload, _body(s3, upload))
    message = str(caught.value)
    assert f"policy keys {key} are not accepted" in message and "template parameters" in message
    assert POLICY_KEYS.get(key, POLICY_KEYS.get(POLICY_ALIASES.get(key, ""))) in message


def test_with_overrides_allowed_good_values_are_used(s3):
    s3.put_object(Bucket=BUCKET, Key=storage.features_key("month_000"), Body=b"parquet")
    upload = _put_month(s3, manifest=dict(build_manifest(MONTH, FILES), **GOOD_VALUES))
    assert check_manifest(upload, _body(s3, upload), allow_overrides=True).overrides == GOOD_VALUES


@pytest.mark.parametrize(("key", "value", "rule"), [
    ("threshold", "abc", "valid number"),
    ("threshold", 1.5, "less than or equal to 1"),
    ("threshold", True, "valid number"),
    ("delta", -1, "greater than or equal to 0"),
    ("reference_month", "month_999", "has not been processed"),
    ("reference_month", MONTH, "another month"),
    ("reference_month", "latest", "pattern"),
    ("require_approval", "yes", "valid boolean"),
    ("approval_timeout_seconds", 0, "greater than or equal to 1"),
    ("drift_threshold", 0.1, "use 'threshold'"),
])
def test_with_overrides_allowed_a_bad_value_is_refused(s3, key, value, rule):
    upload = _put_month(s3, manifest=dict(build_manifest(MONTH, FILES), **{key: value}))
    with pytest.raises(ManifestError, match=rule):
        check_manifest(upload, _body(s3, upload), allow_overrides=True)


# --- start_month_execution: an execution or a quarantine, never neither -------------------------


def _settings(**changes) -> Settings:
    base = Settings(data_bucket=BUCKET, feature_table="", model_name="m", mlflow_tracking_uri="",
                    reference_month="month_000", drift_threshold=0.02, promotion_delta=0.01,
                    state_machine_arn="", api_function_name="")
    return Settings(**{**base.__dict__, **changes})


@pytest.fixture
def machine(s3):
    sfn = boto3.client("stepfunctions")
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    return sfn.create_state_machine(name="pipeline", definition=definition, roleArn=role)["stateMachineArn"]


def _month_keys(s3, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def test_an_accepted_month_starts_one_execution_with_the_stacks_policy(s3, machine):
    upload = _put_month(s3)
    result = start_month_execution(_settings(state_machine_arn=machine, drift_threshold=0.3), upload)
    assert result["started"]
    execution = boto3.client("stepfunctions").describe_execution(executionArn=result["execution_arn"])
    payload = json.loads(execution["input"])
    assert payload["threshold"] == 0.3 and payload["delta"] == 0.01 and payload["reference_month"] == "month_000"
    assert "files" not in payload  # the digests are in S3: the state does not grow with the files
    assert payload["files_key"] == verified_key(MONTH, result["execution"])
    assert read_verified(BUCKET, payload) == {name: hashlib.sha256(body).hexdigest() for name, body in FILES.items()}
    assert start_month_execution(_settings(state_machine_arn=machine), upload)["duplicate"]


def test_overrides_reach_the_execution_when_allowed(s3, machine):
    upload = _put_month(s3, manifest=dict(build_manifest(MONTH, FILES), threshold=0.9, reference_month="previous"))
    result = start_month_execution(_settings(state_machine_arn=machine, allow_manifest_overrides=True), upload)
    payload = json.loads(boto3.client("stepfunctions").describe_execution(executionArn=result["execution_arn"])["input"])
    assert payload["threshold"] == 0.9 and payload["reference_month"] == "previous"


BROKEN = {
    "not_json": b"{",
    "threshold_abc": {"threshold": "abc"},
    "delta_negative": {"delta": -1},
    "nan": b'{"month": "month_005", "files": {}, "threshold": NaN}',
    "files_not_object": {"files": [1, 2]},
    "file_entry_not_object": {"files": {"users.csv": "x"}},
    "bytes_huge": {"files": {"users.csv": {"bytes": 10**30, "sha256": "0" * 64}, "labels.csv": {"bytes": 1, "sha256": "0" * 64}}},
    "nested_file_name": {"files": {"../users.csv": {"bytes": 1, "sha256": "0" * 64}}},
    "unicode": "\u00ff".encode("latin-1"),
}


@pytest.mark.parametrize("allow", [False, True], ids=["overrides_off", "overrides_on"])
@pytest.mark.parametrize("name", list(BROKEN))
def test_every_broken_manifest_is_quarantined_not_left_behind(s3, machine, name, allow):
    change = BROKEN[name]
    manifest = change if isinstance(change, bytes) else dict(build_manifest(MONTH, FILES), **change)
    upload = _put_month(s3, manifest=manifest)
    result = start_month_execution(_settings(state_machine_arn=machine, allow_manifest_overrides=allow), upload)
    assert result["rejected"] and not result["started"]
    assert _month_keys(s3, f"months/{MONTH}/") == []
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=newest_report_key(BUCKET, MONTH))["Body"].read())
    assert report["stage"] == "ingest" and report["violations"]
    assert boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"] == []


def test_an_unexpected_failure_quarantines_the_month_too(s3):
    """No state machine to start (a fault of the stack, not of the month): still no orphan files."""
    upload = _put_month(s3)
    result = start_month_execution(_settings(state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:none"),
                                   upload)
    assert result["rejected"] and "ingest failed: " in result["reason"]
    assert _month_keys(s3, f"months/{MONTH}/") == []
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=newest_report_key(BUCKET, MONTH))["Body"].read())
    assert "upload the month again" in report["violations"][0]["rule"]


def test_a_month_rejected_twice_keeps_each_attempt_apart(s3, machine):
    """The second upload lacks a file the first had: one folder mixed that file in with the
    second attempt's; each attempt now has its own folder, files and report."""
    settings = _settings(state_machine_arn=machine)
    start_month_execution(settings, _put_month(s3, dict(FILES, **{"notes.csv": b"a\n"}), dict(build_manifest(MONTH, FILES), delta=-1)))
    first = newest_report_key(BUCKET, MONTH)
    start_month_execution(settings, _put_month(s3, FILES, dict(build_manifest(MONTH, FILES), threshold="abc")))
    second = newest_report_key(BUCKET, MONTH)
    assert first != second and first.rsplit("/", 2)[0] == second.rsplit("/", 2)[0] == f"quarantine/{MONTH}"
    reports = {key: json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()) for key in (first, second)}
    assert "delta" in reports[first]["message"] and "threshold" in reports[second]["message"]
    for key, report in reports.items():
        folder = key.rsplit("/", 1)[0] + "/"
        assert _month_keys(s3, folder) == sorted(report["quarantined"] + [key])
    assert {k.rsplit("/", 1)[1] for k in reports[first]["quarantined"]} == {*FILES, "notes.csv", "_MANIFEST.json"}
    assert {k.rsplit("/", 1)[1] for k in reports[second]["quarantined"]} == {*FILES, "_MANIFEST.json"}
    assert _month_keys(s3, f"months/{MONTH}/") == []


def test_an_upload_after_its_execution_ended_unsuccessfully_runs_the_month_again(s3, machine):
    """The same content maps to the same execution name, and Step Functions keeps a closed
    execution's name: a re-upload after a failure had been taken for a repeated event, its
    files left in months/ with neither an execution nor a quarantine."""
    sfn = boto3.client("stepfunctions")
    role = boto3.client("iam").get_role(RoleName="r")["Role"]["Arn"]
    waits = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}})
    # runs until stopped, whether moto runs executions (a test before may have turned that on) or not
    settings = _settings(state_machine_arn=sfn.create_state_machine(name="waits", definition=waits,
                                                                     roleArn=role)["stateMachineArn"])
    first = start_month_execution(settings, _put_month(s3))
    assert start_month_execution(settings, _put_month(s3)) == {  # a repeated event while it runs
        "month": MONTH, "execution": first["execution"], "started": False, "duplicate": True, "status": "RUNNING"}
    def stopped(arn: str) -> None:  # an interpreter that runs it ends it on its own thread: wait for that
        sfn.stop_execution(executionArn=arn, error="Operator", cause="a fault, since mended")
        deadline = time.monotonic() + 30
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)

    stopped(first["execution_arn"])
    second = start_month_execution(settings, _put_month(s3))
    assert second["started"] and second["execution"] == f"{first['execution']}-r2"
    stopped(second["execution_arn"])
    third = start_month_execution(settings, _put_month(s3))
    assert third["started"] and third["execution"] == f"{first['execution']}-r3"
    started = json.loads(sfn.describe_execution(executionArn=third["execution_arn"])["input"])
    assert started["execution"] == third["execution"]  # its verified digests are its own
    assert read_verified(BUCKET, started)


def test_attempts_after_unsuccessful_ends_take_the_next_name():
    from streamflow.reruns import execution_for, month_of_execution

    ended = {"m-abc": "FAILED", "m-abc-r2": "TIMED_OUT", "m-abc-r3": "ABORTED"}
    assert execution_for("m-abc", ended) == ("m-abc-r4", None)
    assert execution_for("m-abc", {**ended, "m-abc-r4": "SUCCEEDED"}) == ("m-abc-r4", "SUCCEEDED")
    assert execution_for("m-abc", {"m-abc": "RUNNING"}) == ("m-abc", "RUNNING")
    assert execution_for("m-new", {}) == ("m-new", None)
    # the local stack's resumption of an interrupted execution finished the content: a repeat
    assert execution_for("m-abc", {"m-abc": "ABORTED", "m-abc_resume1": "SUCCEEDED"}) == ("m-abc_resume1", "SUCCEEDED")
    assert [month_of_execution(n) for n in ("month_007-0a1b", "month_007-0a1b-r2", "month_007-0a1b_resume1")] == ["month_007"] * 3


def test_a_repeated_event_after_a_rejection_keeps_the_first_report(s3, machine):
    upload = _put_month(s3, manifest=dict(build_manifest(MONTH, FILES), delta=-1))
    start_month_execution(_settings(state_machine_arn=machine), upload)
    first = s3.get_object(Bucket=BUCKET, Key=newest_report_key(BUCKET, MONTH))["Body"].read()
    assert start_month_execution(_settings(state_machine_arn=machine), upload)["ignored"]
    assert s3.get_object(Bucket=BUCKET, Key=newest_report_key(BUCKET, MONTH))["Body"].read() == first


def test_validate_refuses_bytes_changed_after_ingest_verified_them():
    from streamflow.checksums import changed_since_ingest

    verified = {name: hashlib.sha256(body).hexdigest() for name, body in FILES.items()}
    assert changed_since_ingest(dict(FILES), verified) == []
    assert changed_since_ingest(dict(FILES), None) == []  # an execution started without ingest
    changed = changed_since_ingest(dict(FILES, **{"users.csv": b"other"}, extra=b"x"), verified)
    assert changed == [Violation("users.csv", "", "changed after ingest verified it",
                                 f"expected sha256 {verified['users.csv']}"),
                       Violation("extra", "", "appeared after ingest verified the month")]
    assert changed_since_ingest({"users.csv": FILES["users.csv"]}, verified) == [  # labels.csv deleted since
        Violation("labels.csv", "", "changed after ingest verified it", f"expected sha256 {verified['labels.csv']}")]


# --- the schema file, the JSON Schema and `streamflow manifest` ----------------------------------


def test_the_schema_file_is_the_models_schema():
    assert json.loads((ROOT / "docs" / "manifest.schema.json").read_text()) == json_schema()


def test_json_schema_and_the_model_agree_on_accept_and_refuse():
    validator = jsonschema.Draft202012Validator(json.loads((ROOT / "docs" / "manifest.schema.json").read_text()))
    good = dict(build_manifest(MONTH, FILES), generator={"seed": 1})
    cases = [good, dict(good, **GOOD_VALUES)] + [
        dict(good, **change) for change in BROKEN.values() if isinstance(change, dict)
    ] + [dict(good, threshold=2), {"files": good["files"]}, dict(good, month="2026-01")]
    for case in cases:
        schema_ok = validator.is_valid(case)
        try:
            parse("k", json.dumps(case).encode(), MONTH if MONTH == case.get("month") else case.get("month", MONTH),
                  allow_overrides=True)
            model_ok = True
        except ManifestError:
            model_ok = False
        assert schema_ok == model_ok, case


def test_manifest_for_a_folder_of_csvs(tmp_path):
    folder = tmp_path / "month_007"
    folder.mkdir()
    for name, body in FILES.items():
        (folder / name).write_bytes(body)
    (folder / "_MANIFEST.json").write_text("{}")
    (folder / ".DS_Store").write_bytes(b"x")
    assert manifest_for_folder(folder) == build_manifest("month_007", FILES)


def test_readme_documents_the_manifest_and_the_policy_rule():
    import re

    from streamflow_local.template import load_template

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The manifest\n", 1)[1].split("\n## ", 1)[0]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    jsonschema.validate(example, json_schema())
    rows = dict(re.findall(r"^\| `(\w+)` \| `(\w+)` \|$", section, re.M))
    assert rows == POLICY_KEYS
    parameters = load_template(ROOT / "template.yaml")["Parameters"]
    assert set(POLICY_KEYS.values()) <= set(parameters)
    assert parameters["AllowManifestOverrides"]["Default"] == "false"
    assert "AllowManifestOverrides=true" in section and "docs/manifest.schema.json" in section


@pytest.mark.parametrize("problem", ["unreadable", "policy", "unknown_reference", "unlisted", "tampered"])
def test_every_manifest_error_names_the_manifest_it_is_about(s3, problem):
    """The rejection report and the quarantine are keyed by it: a refusal must say which
    manifest, whichever check refused it."""
    manifest = build_manifest(MONTH, FILES)
    if problem == "unreadable":
        manifest = b"{not json"
    elif problem == "policy":
        manifest["delta"] = 0.5
    elif problem == "unknown_reference":  # refused where overrides are allowed: no such month
        manifest["reference_month"] = "month_009"
    files = dict(FILES, **{"notes.csv": b"x\n"}) if problem == "unlisted" else FILES
    if problem == "tampered":  # same size, other bytes: refused by its digest
        files = dict(FILES, **{"labels.csv": FILES["labels.csv"].replace(b"True", b"Fals")})
    upload = _put_month(s3, files, manifest)
    with pytest.raises(ManifestError) as caught:
        check_manifest(upload, _body(s3, upload), allow_overrides=problem == "unknown_reference")
    assert caught.value.key == upload.manifest_key == f"months/{MONTH}/_MANIFEST.json"
    assert str(caught.value).startswith(f"months/{MONTH}/_MANIFEST.json: ")


@pytest.mark.parametrize("keys", [
    ["quarantine/month_003/_REJECTION.json", "quarantine/month_003/20261201T100000.000Z/_REJECTION.json"],
    ["quarantine/month_003/20261201T100000.000Z/_REJECTION.json", "quarantine/month_003/_REJECTION.json"],
], ids=["listed-in-order", "listed-reversed"])
def test_the_newest_report_of_a_month_is_its_latest_attempts(keys):
    """A report straight in the month's folder predates attempt folders: older than any
    attempt's, though ``_`` sorts after the digits of an attempt's name."""
    listing = keys + ["quarantine/month_003/20261201T090000.000Z/_REJECTION.json",
                      "quarantine/month_003/20261201T100000.000Z/users.csv",
                      "quarantine/month_004/20261130T235959.999Z/_REJECTION.json", "months/month_005/_REJECTION.json"]
    assert newest_report_keys(listing) == {"month_003": "quarantine/month_003/20261201T100000.000Z/_REJECTION.json",
                                           "month_004": "quarantine/month_004/20261130T235959.999Z/_REJECTION.json"}
    assert newest_report_keys(["quarantine/month_003/_REJECTION.json"]) == {"month_003": "quarantine/month_003/_REJECTION.json"}


def test_attempt_names_sort_as_the_attempts_happened():
    import datetime as dt

    from streamflow.quarantine import attempt_name

    times = [dt.datetime(2026, 12, 1, 9, 59, 59, 999999, dt.timezone.utc), dt.datetime(2026, 12, 1, 10, 0, 0, 1000, dt.timezone.utc),
             dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)]
    names = [attempt_name(t) for t in times]
    assert names == sorted(names) and names[0] == "20261201T095959.999Z" and len(set(names)) == 3


def test_waiting_for_a_manifests_files_goes_on_only_while_they_are_visibly_coming():
    from streamflow.arrivals import keep_waiting

    assert keep_waiting({"a.csv"}, set(), since_last_arrival=1.0, waited=1.0, quiet=3, most=30)
    assert not keep_waiting({"a.csv"}, set(), since_last_arrival=3.5, waited=9.0, quiet=3, most=30)  # gone quiet
    assert keep_waiting({"a.csv"}, {"a.csv"}, since_last_arrival=20, waited=20, quiet=3, most=30)  # in parts
    assert not keep_waiting({"a.csv"}, {"b.csv"}, since_last_arrival=20, waited=20, quiet=3, most=30)
    assert not keep_waiting({"a.csv"}, {"a.csv"}, since_last_arrival=0, waited=30, quiet=3, most=30)  # bounded
    assert not keep_waiting(set(), {"a.csv"}, since_last_arrival=0, waited=0, quiet=3, most=30)  # all in


def test_files_that_arrive_after_the_manifest_are_waited_for(s3):
    """``aws s3 sync`` sends the manifest beside the files: one still arriving is waited for,
    one being uploaded in parts too, one that never comes only until the upload goes quiet."""
    import threading
    import time

    from streamflow.arrivals import wait_for_listed_files

    s3.put_object(Bucket=BUCKET, Key=f"months/{MONTH}/users.csv", Body=FILES["users.csv"])
    late = threading.Timer(1.0, lambda: s3.put_object(Bucket=BUCKET, Key=f"months/{MONTH}/labels.csv",
                                                      Body=FILES["labels.csv"]))
    late.start()
    started = time.monotonic()
    assert wait_for_listed_files(BUCKET, MONTH, FILES, quiet=2.5) == set()
    assert 0.9 < time.monotonic() - started < 2.5
    parts = s3.create_multipart_upload(Bucket=BUCKET, Key=f"months/{MONTH}/support_agg_90d.csv")
    started = time.monotonic()
    assert wait_for_listed_files(BUCKET, MONTH, [*FILES, "support_agg_90d.csv"], quiet=0.5, most=2) == {"support_agg_90d.csv"}
    assert time.monotonic() - started >= 2  # in parts: waited past the quiet, up to the bound
    s3.abort_multipart_upload(Bucket=BUCKET, Key=f"months/{MONTH}/support_agg_90d.csv", UploadId=parts["UploadId"])
    started = time.monotonic()
    assert wait_for_listed_files(BUCKET, MONTH, [*FILES, "never.csv"], quiet=0.5) == {"never.csv"}
    assert time.monotonic() - started < 1.5
