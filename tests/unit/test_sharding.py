"""Sharding by user: every row of a user lands in one shard whatever part it came in, a
small month is one shard, per-shard checks agree with the one-shot check, and the shard
summaries merge exactly (the bottom-k sample is the whole month's; AUC from merged score
counts equals the AUC of all pairs)."""

from __future__ import annotations


import pandas as pd

from csv_edit import with_cell
from streamflow.contract import check_month
from streamflow.sharding import (
    ShardSummary,
    merge,
    reshard,
    shard_count,
    shard_of,
    user_hash,
)


def test_the_hash_is_stable_and_a_small_month_is_one_shard():
    assert user_hash("7590-VHVEG") == 0x85ED1A398513F985  # BLAKE2b-64: the same on every machine
    assert shard_of("7590-VHVEG", 7) == 4
    assert shard_count(10_000) == 1 and shard_count(200_000) == 1 and shard_count(200_001) == 2
    assert shard_count(5_000_000) == 25
    assert shard_of("7590-VHVEG", 1) == 0  # S = 1: the one-shot path


def _reshard(files: dict[str, bytes], shards: int) -> dict[int, dict[str, bytes]]:
    out: dict[int, dict[str, bytes]] = {}

    def write(table: str, shard: int, body: bytes) -> None:
        out.setdefault(shard, {})[table] = out.get(shard, {}).get(table, b"") + body

    reshard(sorted(files.items()), shards, write, chunk_rows=97)
    return out


def test_every_users_rows_land_in_one_shard_and_each_shard_is_a_valid_month(month0_files, month0_tables):
    shards = _reshard(month0_files, 4)
    assert sorted(shards) == [0, 1, 2, 3]
    seen: dict[str, int] = {}
    total = 0
    for number, files in shards.items():
        result = check_month(files)
        assert result.ok, (number, result.summary())
        for frame in result.tables.values():
            for uid in frame["user_id"]:
                assert seen.setdefault(uid, number) == number
        total += len(result.tables["users.csv"])
    assert total == len(month0_tables["users.csv"])


def test_a_violation_is_found_in_the_shard_of_its_user(month0_files):
    bad = with_cell(month0_files["labels.csv"], "churn_label", 7, "maybe")
    files = dict(month0_files, **{"labels.csv": bad})
    uid = month0_files["labels.csv"].decode().splitlines()[8].split(",")[0]
    shards = _reshard(files, 3)
    verdicts = {n: check_month(f).ok for n, f in shards.items()}
    assert [n for n, ok in verdicts.items() if not ok] == [shard_of(uid, 3)]


def test_row_counts_and_violations_merge(month0_files):
    a = ShardSummary(shards=[0], rows={"users.csv": 3}, violations=[{"shard": "0", "file": "users.csv",
                                                                      "column": "user_id", "rule": "r"}])
    b = ShardSummary(shards=[1], rows={"users.csv": 4, "labels.csv": 4})
    merged = merge([a, b])
    assert merged.rows == {"users.csv": 7, "labels.csv": 4} and len(merged.violations) == 1
    assert pd.Series(merged.rows).sum() == 11
