"""The manifest's rules as an uploader meets them, without a bucket: what ``parse`` accepts,
what each refusal says (the text lands in the quarantine report), which policy values a
stack with overrides takes, and ``streamflow manifest <folder>``. The checks against the
bytes in S3 are in test_manifest.py (moto)."""

from __future__ import annotations

import hashlib
import json

import pytest

from streamflow.checksums import verified_key
from streamflow.ingest import execution_input
from streamflow.manifest import (
    Manifest,
    ManifestError,
    manifest_for_folder,
    month_files_in,
    parse,
    policy_keys_in,
    policy_overrides,
    policy_refusal,
    sha256_of_file,
)
from streamflow.settings import Settings
from streamflow.violations import Violation

KEY = "months/month_005/_MANIFEST.json"
MONTH = "month_005"
SHA = "0" * 64
GOOD = {"month": MONTH, "files": {"users.csv": {"bytes": 3, "sha256": SHA}}}


def _refusal(body, month=MONTH, allow=False) -> list[Violation]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ManifestError) as caught:
        parse(KEY, raw, month, allow)
    assert caught.value.key == KEY
    return caught.value.violations


def _overrides(extra: dict, allow=True, processed=("month_000",)) -> dict:
    manifest = parse(KEY, json.dumps(dict(GOOD, **extra)).encode(), MONTH, allow_overrides=True)
    return policy_overrides(KEY, manifest, allow, lambda month: month in processed)


# --- parse ---------------------------------------------------------------------------------------


def test_a_good_manifest_parses_with_extra_keys_kept():
    manifest = parse(KEY, json.dumps(dict(GOOD, generator={"seed": 1})).encode(), MONTH)
    assert manifest.month == MONTH and manifest.files["users.csv"].bytes == 3
    assert manifest.model_dump(exclude_unset=True)["generator"] == {"seed": 1}


@pytest.mark.parametrize("month", ["month_5", "Month_005", "month_0055", "x"])
def test_a_month_folder_not_named_month_nnn_is_refused_before_the_body_is_read(month):
    assert _refusal(b"not json", month) == [
        Violation("_MANIFEST.json", "", f"month name must match month_NNN, not {month!r}")]
    assert str(_refusal(b"not json", month)[0]) == f"_MANIFEST.json: month name must match month_NNN, not {month!r}"


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b""])
def test_a_body_that_is_not_json_is_refused(body):
    (violation,) = _refusal(body)
    assert (violation.file, violation.column, violation.rule) == ("_MANIFEST.json", "", "must be valid JSON")
    with pytest.raises(ValueError) as decoding:  # the decoder's own one-line message is the example
        json.loads(body)
    assert violation.example == str(decoding.value)


def test_policy_is_refused_when_the_caller_does_not_say_overrides_are_allowed():
    """Off is the default: a caller that forgets the stack's setting cannot let an uploader set policy."""
    with pytest.raises(ManifestError) as caught:
        parse(KEY, json.dumps(dict(GOOD, delta=0.5)).encode(), MONTH)
    assert caught.value.violations == [policy_refusal(["delta"])]


@pytest.mark.parametrize(("body", "kind"), [(b"[1]", "list"), (b'"x"', "str"), (b"3", "int"), (b"null", "NoneType")])
def test_json_that_is_not_an_object_is_refused_naming_what_it_is(body, kind):
    assert _refusal(body) == [Violation("_MANIFEST.json", "", "must be a JSON object", kind)]


def test_policy_is_refused_before_its_value_is_looked_at():
    """With overrides off, a bad value draws the policy refusal, not a type error."""
    (violation,) = _refusal(dict(GOOD, delta="abc", reference="x"))
    assert violation == policy_refusal(["delta", "reference"])


def test_schema_faults_name_the_field_and_the_value_given():
    violations = _refusal({"month": MONTH, "files": {"users.csv": {"bytes": -1, "sha256": "A" * 200}}})
    by_column = {v.column: v for v in violations}
    assert set(by_column) == {"files.users.csv.bytes", "files.users.csv.sha256"}
    assert by_column["files.users.csv.bytes"].example == "-1"
    assert by_column["files.users.csv.bytes"].rule == "Input should be greater than or equal to 0"
    assert by_column["files.users.csv.sha256"].example == repr("A" * 200)[:80]
    assert all(v.file == "_MANIFEST.json" for v in violations)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("name", ["threshold", "delta"])
def test_a_policy_value_that_is_not_a_finite_number_is_refused_by_the_schema(name, value):
    """Python's json reads NaN and Infinity; the schema's bounds must refuse them, even where
    overrides are allowed."""
    body = json.dumps(GOOD)[:-1] + f', "{name}": {value}}}'
    (violation,) = _refusal(body.encode(), allow=True)
    assert violation.column == name and violation.example == repr(float(value.replace("Infinity", "inf")))


def test_a_missing_field_has_no_example():
    (violation,) = _refusal({"files": GOOD["files"]})
    assert violation == Violation("_MANIFEST.json", "month", "Field required", "")


@pytest.mark.parametrize("name", ["_MANIFEST.json", "../users.csv", ".hidden", "a/b.csv", "-x.csv"])
def test_file_names_must_be_plain_names_of_the_months_files(name):
    files = {"users.csv": GOOD["files"]["users.csv"], name: {"bytes": 1, "sha256": SHA}}
    assert _refusal({"month": MONTH, "files": files}) == [
        Violation("_MANIFEST.json", "files",
                  "file names are plain names of the month's files or parts <table>/part-NNNNN.csv", repr(name))]


def test_the_manifest_must_name_the_month_it_was_uploaded_as():
    assert _refusal(dict(GOOD, month="month_006")) == [
        Violation("_MANIFEST.json", "month", "names month 'month_006', uploaded as month_005")]


def test_five_faults_are_all_shown_and_a_sixth_is_counted():
    """The error text is the quarantine report's one-line cause: at most five faults, then a count."""
    five = [Violation("_MANIFEST.json", f"c{i}", "rule") for i in range(5)]
    assert str(ManifestError(KEY, five)) == f"{KEY}: " + "; ".join(str(v) for v in five)
    six = five + [Violation("_MANIFEST.json", "c5", "rule")]
    assert str(ManifestError(KEY, six)) == f"{KEY}: " + "; ".join(str(v) for v in five) + "; and 1 more"


# --- the policy rule ------------------------------------------------------------------------------


def test_policy_keys_are_found_in_file_order_with_their_aliases():
    raw = {"month": MONTH, "delta": 0.1, "files": {}, "approval": True, "threshold": 0.2, "other": 1}
    assert policy_keys_in(raw) == ["delta", "approval", "threshold"]


def test_the_refusal_names_the_keys_and_each_template_parameter_once():
    violation = policy_refusal(["threshold", "drift_threshold", "approval_timeout"])
    assert violation.file == "_MANIFEST.json" and violation.column == "threshold,drift_threshold,approval_timeout"
    assert violation.rule == (
        "policy keys threshold, drift_threshold, approval_timeout are not accepted: promotion policy is set by "
        "the stack's template parameters (DriftThreshold, ApprovalTimeoutSeconds), not by the uploader; remove "
        "them from the manifest (a stack deployed with AllowManifestOverrides=true accepts checked values)")


def test_no_policy_means_no_overrides_whether_allowed_or_not():
    assert _overrides({}, allow=True) == {} and _overrides({}, allow=False) == {}


def test_a_stack_without_overrides_refuses_a_parsed_manifests_policy():
    with pytest.raises(ManifestError) as caught:
        _overrides({"threshold": 0.5}, allow=False)
    assert caught.value.violations == [policy_refusal(["threshold"])]
    assert str(caught.value).startswith(f"{KEY}: _MANIFEST.json:threshold: policy keys threshold are not accepted")


def test_with_overrides_the_values_come_back_typed_as_the_stack_would_send_them():
    values = _overrides({"threshold": 1, "delta": 0, "reference_month": "month_000", "require_approval": False,
                         "approval_timeout_seconds": 60})
    assert values == {"threshold": 1.0, "delta": 0.0, "reference_month": "month_000", "require_approval": False,
                      "approval_timeout_seconds": 60}
    assert type(values["threshold"]) is float and type(values["delta"]) is float


def test_with_overrides_each_alias_is_named_with_the_key_to_use():
    with pytest.raises(ManifestError) as caught:
        _overrides({"threshold": 0.5, "promotion_delta": 0.1, "approval": True})
    assert caught.value.violations == [
        Violation("_MANIFEST.json", "promotion_delta", "unknown policy key, use 'delta'"),
        Violation("_MANIFEST.json", "approval", "unknown policy key, use 'require_approval'")]
    assert str(caught.value).startswith(f"{KEY}: _MANIFEST.json:promotion_delta: unknown policy key")


@pytest.mark.parametrize("mode", ["champion", "previous"])
def test_a_reference_mode_needs_no_processed_month(mode):
    assert _overrides({"reference_month": mode}, processed=()) == {"reference_month": mode}


def test_a_named_reference_month_must_be_processed_and_another_month():
    assert _overrides({"reference_month": "month_003"}, processed=("month_003",)) == {"reference_month": "month_003"}
    with pytest.raises(ManifestError) as caught:
        _overrides({"reference_month": "month_004"}, processed=("month_003",))
    assert caught.value.violations == [
        Violation("_MANIFEST.json", "reference_month", "names a month that has not been processed", "month_004")]
    assert caught.value.key == KEY
    with pytest.raises(ManifestError) as caught:
        _overrides({"reference_month": MONTH}, processed=(MONTH,))
    assert caught.value.violations == [
        Violation("_MANIFEST.json", "reference_month", "must be another month than the one uploaded", MONTH)]
    assert caught.value.key == KEY


# --- what the execution gets ----------------------------------------------------------------------


def _settings(**changes) -> Settings:
    base = Settings(data_bucket="b", feature_table="", model_name="m", mlflow_tracking_uri="",
                    reference_month="previous", drift_threshold=0.25, promotion_delta=0.5,
                    state_machine_arn="", api_function_name="", require_approval=True, approval_timeout_seconds=90)
    return Settings(**{**base.__dict__, **changes})


def test_the_execution_input_is_the_stacks_policy_and_the_verified_files_key():
    payload = execution_input(_settings(), MONTH, "month_005-abc", {}, "verified/month_005/month_005-abc.json")
    assert payload == {"month": MONTH, "execution": "month_005-abc", "files_key": "verified/month_005/month_005-abc.json",
                       "reference_month": "previous", "threshold": 0.25, "delta": 0.5, "require_approval": True,
                       "approval_timeout_seconds": 90}
    assert verified_key(MONTH, "month_005-abc") == payload["files_key"]  # the month's and the execution's


def test_allowed_overrides_replace_the_stacks_policy_and_no_verified_files_is_no_key():
    payload = execution_input(_settings(), MONTH, "n", {"threshold": 0.9, "require_approval": False})
    assert payload["threshold"] == 0.9 and payload["require_approval"] is False and payload["delta"] == 0.5
    assert "files_key" not in payload and "files" not in payload


# --- streamflow manifest <folder> -----------------------------------------------------------------


def test_a_file_is_hashed_whole_across_chunks(tmp_path):
    body = bytes(range(256)) * 9000  # > 2 MiB: three 1 MiB chunks
    (tmp_path / "big.csv").write_bytes(body)
    assert sha256_of_file(tmp_path / "big.csv") == hashlib.sha256(body).hexdigest()


def test_the_folder_manifest_lists_files_only_named_after_the_folder_or_the_month_given(tmp_path):
    folder = tmp_path / "month_009"
    folder.mkdir()
    (folder / "users.csv").write_bytes(b"abc")
    (folder / "sub").mkdir()
    (folder / ".hidden").write_bytes(b"x")
    (folder / "_MANIFEST.json").write_bytes(b"{}")
    expected_files = {"users.csv": {"bytes": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}}
    assert manifest_for_folder(folder) == {"month": "month_009", "files": expected_files}
    assert manifest_for_folder(folder, "month_010") == {"month": "month_010", "files": expected_files}
    Manifest.model_validate(manifest_for_folder(folder))


def test_a_folders_files_are_its_plain_files_and_the_parts_of_every_table_folder(tmp_path):
    folder = tmp_path / "month_009"
    for name in ("labels.csv", "users/part-00000.csv", "users/part-00001.csv", "usage_agg_30d/part-00000.csv",
                 "users/notes.txt", "_MANIFEST.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())
    (folder / "users" / "part-00002.csv").mkdir()  # a folder named like a part is not a part
    assert [name for name, _ in month_files_in(folder)] == [
        "labels.csv", "usage_agg_30d/part-00000.csv", "users/part-00000.csv", "users/part-00001.csv"]
    assert all(path.read_bytes() == name.encode() for name, path in month_files_in(folder))


def test_a_folder_that_cannot_make_a_valid_manifest_fails_when_written(tmp_path):
    folder = tmp_path / "not-a-month"
    folder.mkdir()
    (folder / "users.csv").write_bytes(b"abc")
    with pytest.raises(ValueError, match="month"):
        manifest_for_folder(folder)
