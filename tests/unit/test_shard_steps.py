"""A month validated and featurised shard by shard (the steps of ShardMonth, SplitParts'
children, PartsSplit, ValidateShards' children and MergeShards, against the emulator's S3):
a small month stays one shard without being read; a bigger one, uploaded in parts, is split
a file at a time so that every shard is a valid month of its own, and the shards' features
are exactly the one-shot path's (no whole-month file); a broken cell rejects the whole month,
the report naming the shard, file, column and rule; a changed or unparsable file rejects it
naming the file."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from aws_endpoint import s3_bucket_in_env
from csv_edit import with_cell
from streamflow import shard_steps, steps, storage
from streamflow.partitioned_month import part_bounds
from streamflow.parts import part_name
from streamflow.quarantine import newest_report_key
from streamflow.schema import MONTH_FILES
from streamflow.settings import Settings
from streamflow.sharding import (
    count_rows,
    in_shard,
    items_key,
    parts_key,
    reshard,
    shard_folder,
    shard_of,
    shard_of_file,
    shards_prefix,
    users_upper_bound,
)
from streamflow.violations import ContractError

BUCKET = "shard-steps"
PER_SHARD = 150  # month0 has 500 users: 4 shards
PARTS = 3


@pytest.fixture(scope="module")
def s3():
    with s3_bucket_in_env(BUCKET) as client:
        yield client


def _settings(per_shard: int = PER_SHARD) -> Settings:
    return Settings.from_env({"DATA_BUCKET": BUCKET, "USERS_PER_SHARD": str(per_shard)})


def _as_parts(files: dict[str, bytes], parts: int = PARTS) -> dict[str, bytes]:
    out = {}
    for table in MONTH_FILES:
        header, *rows = files[table].decode().splitlines(keepends=True)
        for index, (start, end) in enumerate(part_bounds(len(rows), parts)):
            out[part_name(table, index)] = (header + "".join(rows[start:end])).encode()
    return out


def _upload(s3, month: str, files: dict[str, bytes]) -> dict[str, str]:
    for name, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=storage.month_prefix(month) + name, Body=body)
    return {name: hashlib.sha256(body).hexdigest() for name, body in files.items()}


VALIDATE = shard_steps.route(steps.validate, shard_steps.validate_shard, shard=shard_steps.shard_month,
                             split=shard_steps.split_part, items=shard_steps.write_shard_items)


def _split(settings: Settings, month: str, verified: dict[str, str]) -> tuple[dict, list[dict]]:
    """ShardMonth, each parts.json item as SplitParts' child runs it (the Task's Parameters add
    ``action: split``), then PartsSplit: (its result, the children's results)."""
    sharding = VALIDATE(settings, {"action": "shard", "month": month, "execution": "e1", "files": verified,
                                   "concurrency": 2})
    parts = json.loads(storage.get_bytes(BUCKET, sharding["parts_key"]))
    assert sharding["parts"] == len(parts)
    children = [VALIDATE(settings, dict(item, action="split")) for item in parts]
    sharding = VALIDATE(settings, {"action": "items", "month": month, "execution": "e1", "sharding": sharding})
    return sharding, children


def _run_sharded(settings: Settings, month: str, verified: dict[str, str]) -> tuple[dict, list[dict]]:
    """The month split (``_split``), then each item as ValidateShards' child runs it
    (ValidateShard, then BuildShardFeatures when valid): (the sharding, the Map's results)."""
    features = shard_steps.route(steps.build_month_features, shard_steps.build_shard_features,
                                 merge=shard_steps.merge_shards)
    sharding, _ = _split(settings, month, verified)
    items = json.loads(storage.get_bytes(BUCKET, sharding["items_key"]))
    results = []
    for item in items:
        result = dict(item, summary=VALIDATE(settings, item))
        if result["summary"]["valid"]:
            result["features"] = features(settings, item)
        results.append(result)
    return sharding, results


def test_a_small_month_is_one_shard_and_is_not_read(s3, month0_files):
    verified = _upload(s3, "month_010", month0_files)
    bound = users_upper_bound(len(month0_files["users.csv"]))
    outcome = shard_steps.shard_month(_settings(per_shard=bound), {"month": "month_010", "files": verified,
                                                                   "concurrency": "3"})
    assert outcome == {"bucket": BUCKET, "users_per_shard": bound, "concurrency": 3, "shards": 1}
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=shards_prefix("month_010"))
    counted = shard_steps.shard_month(_settings(per_shard=500), {"month": "month_010", "files": verified})
    assert counted["shards"] == 1 and counted["users"] == 500  # read (the bound says maybe), still one


def test_sharded_features_are_the_one_shot_features(s3, month0_files):
    settings = _settings()
    whole_verified = _upload(s3, "month_011", month0_files)
    steps.validate(settings, {"month": "month_011", "files": whole_verified})
    steps.build_month_features(settings, {"month": "month_011"})
    whole = storage.read_features(BUCKET, "month_011")

    parts = _as_parts(month0_files)
    sharding, results = _run_sharded(settings, "month_012", _upload(s3, "month_012", parts))
    assert sharding["shards"] == 4 and sharding["users"] == 500 and sharding["concurrency"] == 2
    for result in results:  # a user's rows all in its shard, each shard a valid partitioned month
        users = storage.read_frame(BUCKET, result["features"]["features_key"]).index
        assert len(users) > 0 and {shard_of(u, 4) for u in users} == {result["shard"]}
        assert result["summary"]["rows"]["users.csv"] == len(users)
    merged = shard_steps.merge_shards(settings, {"month": "month_012", "execution": "e1", "shards": 4})
    assert merged["valid"] and merged["shards"] == 4 and merged["users"] == 500
    assert merged["rows"] == {table: 500 for table in MONTH_FILES}
    shards = pd.concat(storage.read_frame(BUCKET, r["features"]["features_key"]) for r in results)
    pd.testing.assert_frame_equal(shards.loc[whole.index], whole)  # every user once, the same values
    assert len(shards) == len(whole)
    assert storage.object_size(BUCKET, storage.features_key("month_012")) is None  # no whole-month file
    assert merged["features"]["churn_rate"] == round(float(whole["churn_label"].mean()), 4)
    assert merged["features"]["users"] == 500 and merged["features"]["shards_prefix"] == shards_prefix("month_012")


def test_merge_drops_a_features_file_a_one_shot_run_of_the_month_left(s3, month0_files):
    settings = _settings()
    _, results = _run_sharded(settings, "month_014", _upload(s3, "month_014", _as_parts(month0_files)))
    storage.write_features(BUCKET, "month_014", storage.read_frame(BUCKET, results[0]["features"]["features_key"]))
    shard_steps.merge_shards(settings, {"month": "month_014", "execution": "e1", "shards": len(results)})
    assert storage.object_size(BUCKET, storage.features_key("month_014")) is None


def test_churn_rate_is_the_shards_label_counts_merged():
    results = [{"features": {"label_counts": {"0": 7, "1": 3}}}, {"features": {"label_counts": {"0": 5, "1": 1}}}]
    assert shard_steps.churn_rate(results) == 0.25
    assert shard_steps.churn_rate(results + [{"features": {"label_counts": None}}]) is None
    assert shard_steps.churn_rate([{"features": {"label_counts": {"0": 0, "1": 0}}}]) is None


def test_a_violation_in_one_shard_rejects_the_month_naming_the_shard(s3, month0_files):
    bad_user = month0_files["usage_agg_30d.csv"].decode().splitlines()[8].split(",")[0]
    files = dict(month0_files, **{"usage_agg_30d.csv": with_cell(month0_files["usage_agg_30d.csv"],
                                                                  "watch_hours_30d", 7, "-1.5")})
    _, results = _run_sharded(_settings(), "month_013", _upload(s3, "month_013", _as_parts(files)))
    shard = shard_of(bad_user, 4)
    assert [r["shard"] for r in results if not r["summary"]["valid"]] == [shard]
    assert all("features" in r for r in results if r["shard"] != shard)
    with pytest.raises(ContractError) as raised:
        shard_steps.merge_shards(_settings(), {"month": "month_013", "execution": "e1", "shards": len(results)})
    where = in_shard(shard, "usage_agg_30d/part-00000.csv")
    assert f"{where}:watch_hours_30d: must not be negative" in str(raised.value)
    report = json.loads(storage.get_bytes(BUCKET, newest_report_key(BUCKET, "month_013")))
    assert [(v["file"], v["column"], v["rule"]) for v in report["violations"]] == [
        (where, "watch_hours_30d", "must not be negative")]
    assert report["stage"] == "validate" and report["execution"] == "e1"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=storage.month_prefix("month_013"))
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=shards_prefix("month_013"))


def test_a_file_changed_after_ingest_is_refused_by_its_split_child(s3, month0_files):
    parts = _as_parts(month0_files)
    verified = _upload(s3, "month_014", parts)
    verified["labels/part-00001.csv"] = "0" * 64
    sharding = shard_steps.shard_month(_settings(), {"month": "month_014", "execution": "e2", "files": verified})
    items = json.loads(storage.get_bytes(BUCKET, sharding["parts_key"]))
    assert [i["sha256"] for i in items if i["name"] == "labels/part-00001.csv"] == ["0" * 64]
    results = [shard_steps.split_part(_settings(), item) for item in items]
    assert [r["name"] for r in results if r["violations"]] == ["labels/part-00001.csv"]
    assert max(len(json.dumps(r)) for r in results) < 100  # the Map's output stays small
    with pytest.raises(ContractError, match="labels/part-00001.csv: changed after ingest verified it"):
        shard_steps.write_shard_items(_settings(), {"month": "month_014", "execution": "e2", "sharding": sharding})
    assert json.loads(storage.get_bytes(BUCKET, newest_report_key(BUCKET, "month_014")))["stage"] == "validate"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=shards_prefix("month_014"))


def test_a_verified_file_gone_or_an_unverified_one_is_refused_before_splitting(s3, month0_files):
    parts = _as_parts(month0_files)
    verified = _upload(s3, "month_018", parts)
    verified["users/part-00003.csv"] = verified.pop("users/part-00002.csv")
    with pytest.raises(ContractError) as raised:
        shard_steps.shard_month(_settings(), {"month": "month_018", "execution": "e2", "files": verified})
    assert [(v.file, v.rule) for v in raised.value.violations] == [
        ("users/part-00002.csv", "appeared after ingest verified the month"),
        ("users/part-00003.csv", "changed after ingest verified it")]
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=shards_prefix("month_018"))


def test_a_missing_table_is_refused_before_sharding(s3, month0_files):
    files = {k: v for k, v in _as_parts(month0_files).items() if not k.startswith("labels/")}
    _upload(s3, "month_015", files)
    with pytest.raises(ContractError, match="labels.csv: required file missing"):
        shard_steps.shard_month(_settings(), {"month": "month_015", "files": {}})


def test_a_resharded_month_leaves_no_stale_shard_files(s3, month0_files):
    verified = _upload(s3, "month_016", month0_files)
    stale = shard_folder("month_016", 2) + "users/part-00007.csv"
    s3.put_object(Bucket=BUCKET, Key=stale, Body=b"user_id\n")
    sharding = shard_steps.shard_month(_settings(), {"month": "month_016", "files": verified})
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=shards_prefix("month_016"))["Contents"]]
    assert keys == [parts_key("month_016")] and sharding["parts"] == len(MONTH_FILES)  # nothing read or split yet
    _split(_settings(), "month_016", verified)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=shards_prefix("month_016"))["Contents"]]
    assert stale not in keys and items_key("month_016") in keys
    assert len(keys) == 2 + 4 * len(MONTH_FILES)  # one part a table a shard (the month came whole)


def test_every_shard_gets_every_part_header_only_where_no_row_went(s3, month0_files):
    """A part holding one user's rows: every shard gets part-00001 of users, three of them
    header only, and each shard still validates (its numbering has no gap)."""
    header, first, *rest = month0_files["users.csv"].decode().splitlines(keepends=True)
    parts = dict(_as_parts(month0_files), **{"users/part-00000.csv": (header + "".join(rest)).encode(),
                                             "users/part-00001.csv": (header + first).encode()})
    del parts["users/part-00002.csv"]
    _, results = _run_sharded(_settings(), "month_019", _upload(s3, "month_019", parts))
    assert all(r["summary"]["valid"] for r in results) and sum(r["summary"]["rows"]["users.csv"] for r in results) == 500
    owner = shard_of(first.split(",")[0], 4)
    for shard in range(4):
        piece = storage.get_bytes(BUCKET, shard_folder("month_019", shard) + "users/part-00001.csv")
        assert (piece.count(b"\n") == 2) == (shard == owner) and piece.startswith(header.encode())


def test_route_picks_the_step_for_the_event():
    calls = []

    def whole(settings, event):
        """The one-shot step."""
        calls.append("whole")
        return {}

    step = shard_steps.route(whole, lambda s, e: calls.append("shard") or {}, merge=lambda s, e: calls.append("merge")
                             or {})
    step(None, {"month": "m"})
    step(None, {"month": "m", "shard": 0})
    step(None, {"month": "m", "action": "merge"})
    assert calls == ["whole", "shard", "merge"] and step.__name__ == "whole" and step.__doc__ == "The one-shot step."
    with pytest.raises(ValueError, match="unknown action 'nope'"):
        step(None, {"action": "nope"})


def test_rows_are_counted_from_chunks_and_a_users_file_bounds_its_users():
    assert count_rows([b"user_id\n7590-VHVEG\n", b"1111-ABCDE\n"]) == 2
    assert count_rows([b"user_id\n7590-VH", b"VEG"]) == 1  # no newline at the end
    assert count_rows([b"user_id"]) == 0 and count_rows([]) == 0 and count_rows([b""]) == 0
    assert users_upper_bound(110) == 10 and users_upper_bound(0) == 0
    body = b"user_id\n" + b"".join(b"7590-VHVEG\n" for _ in range(9))
    assert count_rows([body]) <= users_upper_bound(len(body))


def test_a_shard_file_name_round_trips():
    assert in_shard(3, "users/part-00000.csv") == "shard-00003/users/part-00000.csv"
    assert shard_of_file(in_shard(12, "labels.csv")) == 12
    assert shard_of_file("users/part-00000.csv") is None and shard_of_file("shard-x/users.csv") is None
    assert shard_folder("month_001", 3) == "shards/month_001/shard-00003/"


@pytest.mark.parametrize(("broken", "example"), [
    (lambda body: body.replace(b"\n", b",\n").replace(b",\n", b"\n", 1), "trailing comma"),  # rows, not header
    (lambda body: body.replace(b"user_id,", b"id,", 1), "user_id"),
])
def test_a_part_that_cannot_be_split_by_user_rejects_the_month_naming_it(s3, month0_files, broken, example):
    parts = _as_parts(month0_files)
    parts["usage_agg_30d/part-00002.csv"] = broken(parts["usage_agg_30d/part-00002.csv"])
    verified = _upload(s3, "month_017", parts)
    with pytest.raises(ContractError) as raised:
        _split(_settings(), "month_017", verified)
    (violation,) = raised.value.violations
    assert violation.file == "usage_agg_30d/part-00002.csv" and example in violation.example
    assert "as many fields a row as its header" in violation.rule
    report = json.loads(storage.get_bytes(BUCKET, newest_report_key(BUCKET, "month_017")))
    assert [(v["file"], v["rule"]) for v in report["violations"]] == [(violation.file, violation.rule)]


def test_a_byte_order_mark_is_not_part_of_the_header(month0_files):
    pieces = {}
    reshard([("users.csv", b"\xef\xbb\xbf" + month0_files["users.csv"])], 2,
            lambda table, shard, body: pieces.setdefault(shard, body))
    assert all(body.startswith(b"user_id,") for body in pieces.values()) and len(pieces) == 2


def test_the_verified_digests_are_read_from_the_key_ingest_wrote(s3, month0_files):
    """The execution input carries ``files_key``, not the digests: ShardMonth and Validate read
    them from S3 and refuse exactly what they refused inline; a key that is gone is an error."""
    from botocore.exceptions import ClientError
    from streamflow.checksums import put_verified

    verified = _upload(s3, "month_019", _as_parts(month0_files))
    verified["users/part-00003.csv"] = verified.pop("users/part-00002.csv")
    key = put_verified(BUCKET, "month_019", "month_019-abc", verified)
    assert key == "verified/month_019/month_019-abc.json"
    with pytest.raises(ContractError) as by_key:
        shard_steps.shard_month(_settings(), {"month": "month_019", "execution": "e3", "files_key": key})
    assert [(v.file, v.rule) for v in by_key.value.violations] == [
        ("users/part-00002.csv", "appeared after ingest verified the month"),
        ("users/part-00003.csv", "changed after ingest verified it")]

    whole = _upload(s3, "month_022", month0_files)
    key = put_verified(BUCKET, "month_022", "month_022-abc", dict(whole, **{"labels.csv": "0" * 64}))
    with pytest.raises(ContractError, match="labels.csv: changed after ingest verified it"):
        steps.validate(_settings(), {"month": "month_022", "files_key": key})
    _upload(s3, "month_022", month0_files)  # again: the rejection quarantined it
    with pytest.raises(ClientError):  # the digests gone: never a month checked without them
        steps.validate(_settings(), {"month": "month_022", "files_key": "verified/month_022/gone.json"})
