"""Shard a month by user, and merge what the shards report.

A month too big for one function is re-partitioned into ``S`` shards by a stable hash of
``user_id``, so every row of a user (in every table, whatever part it arrived in) lands in
the same shard and the cross-table rules (a label for every user, no duplicate ``user_id``,
no orphan rows) can be checked shard by shard. ``S`` grows with the month
(``SHARD_USERS`` users a shard); a small month is one shard, so its path is the one-shot
path. Each shard reports a ``ShardSummary`` (its violations, each naming the shard, and its
row counts); summaries merge by concatenating and summing. The drift and training samples
and Compare's exact AUC are ``samples`` and ``auc_merge``.

Pure apart from ``reshard``, which streams CSV parts through two callbacks.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# The template's UsersPerShard default (a test holds them equal). 200,000 rather than the
# 250,000 first chosen: a ValidateShards child grows with its shard (≈ 1.5 MB per 1,000 users
# over ≈ 230 MB), and at 200,000 the largest task of a 1M month (544 MB) stays within 20 % of
# a 100,000-user month's (496 MB); at 250,000 it was 1.21–1.23×.
SHARD_USERS = 200_000
_HASH_BYTES = 8


def user_hash(user_id: str) -> int:
    """A stable 64-bit hash of a user id (BLAKE2b: the same on every machine and Python)."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=_HASH_BYTES).digest(), "big")


def shard_count(users: int, per_shard: int = SHARD_USERS) -> int:
    """How many shards a month of ``users`` users gets: 1 up to ``per_shard`` users."""
    if users < 0 or per_shard < 1:
        raise ValueError("users must be >= 0 and per_shard >= 1")
    return max(1, math.ceil(users / per_shard))


def shard_of(user_id: str, shards: int) -> int:
    return user_hash(user_id) % shards


def reshard(parts: Iterable[tuple[str, bytes]], shards: int,
            write: Callable[[str, int, bytes], None], chunk_rows: int = 100_000) -> dict[str, list[int]]:
    """Route every row of every table to its user's shard.

    ``parts``: (table, CSV bytes) in row order, a table possibly in several parts;
    ``write(table, shard, csv_bytes)`` receives each shard's rows of a table in pieces, the
    first piece of a (table, shard) with the header. Returns rows per table per shard."""
    import pandas as pd

    counts: dict[str, list[int]] = {}
    started: set[tuple[str, int]] = set()
    for table, body in parts:
        per_shard = counts.setdefault(table, [0] * shards)
        reader = pd.read_csv(io.BytesIO(body.removeprefix(codecs.BOM_UTF8)), dtype=str, keep_default_na=False,
                             chunksize=chunk_rows)
        for chunk in reader:
            if not isinstance(chunk.index, pd.RangeIndex):  # pandas made the first column the index:
                raise ValueError("rows must have as many fields as the header (trailing comma?)")  # fields lost
            shard = chunk["user_id"].map(lambda uid: shard_of(uid, shards))
            for number, rows in chunk.groupby(shard, sort=True):
                header = (table, int(number)) not in started
                started.add((table, int(number)))
                write(table, int(number), rows.to_csv(index=False, header=header, lineterminator="\n").encode())
                per_shard[int(number)] += len(rows)
    return counts


@dataclass
class ShardSummary:
    """What one shard reports, mergeable with the others' (see the module docstring)."""

    shards: list[int]
    rows: dict[str, int] = field(default_factory=dict)
    violations: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"shards": self.shards, "rows": self.rows, "violations": self.violations}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardSummary:
        return cls(shards=list(data["shards"]), rows=dict(data["rows"]), violations=list(data["violations"]))


def merge(summaries: Iterable[ShardSummary]) -> ShardSummary:
    """One summary of all shards: their violations and summed row counts."""
    summaries = list(summaries)
    rows: Counter[str] = Counter()
    for summary in summaries:
        rows.update(summary.rows)
    return ShardSummary(shards=sorted(n for s in summaries for n in s.shards), rows=dict(rows),
                        violations=[v for s in summaries for v in s.violations])


def shard_items(month: str, shards: int) -> list[dict[str, Any]]:
    """The Distributed Map's items: one per shard (what its ItemReader reads from S3)."""
    return [{"month": month, "shard": n, "shards": shards} for n in range(shards)]


def iter_shard_violations(summary: ShardSummary) -> Iterator[str]:
    """Violations as people read them: ``shard 3: users.csv:user_id: rule (e.g. …)``."""
    for v in summary.violations:
        where = f"{v['file']}:{v['column']}" if v.get("column") else v["file"]
        tail = f" (e.g. {v['example']})" if v.get("example") else ""
        yield f"shard {v['shard']}: {where}: {v['rule']}{tail}"


# Where a sharded month lives in the data bucket (derived data: rewritten by every execution).
SHARDS_PREFIX = "shards/"
MIN_ROW_BYTES = 11  # a users row is at least a 10-character user_id and a newline


def shards_prefix(month: str) -> str:
    return f"{SHARDS_PREFIX}{month}/"


def shard_folder(month: str, shard: int) -> str:
    """``shards/<month>/shard-00003/``: the shard as a partitioned month of its own."""
    return f"{shards_prefix(month)}shard-{shard:05d}/"


def items_key(month: str) -> str:
    """The Distributed Map's items (one per shard), read by its ItemReader."""
    return f"{shards_prefix(month)}items.json"


def parts_key(month: str) -> str:
    """SplitParts' items (one per uploaded file), read by its ItemReader."""
    return f"{shards_prefix(month)}parts.json"


def split_reports_prefix(month: str) -> str:
    """Where a SplitParts child that found violations reports them (only such a child writes)."""
    return f"{shards_prefix(month)}split-violations/"


def split_report_key(month: str, table: str, index: int) -> str:
    """``shards/<month>/split-violations/users/part-00003.json``: one uploaded file's report."""
    return f"{split_reports_prefix(month)}{table.removesuffix('.csv')}/part-{index:05d}.json"


def shard_features_key(month: str, shard: int) -> str:
    return f"{shard_folder(month, shard)}features.parquet"


def users_upper_bound(users_bytes: int) -> int:
    """The most users ``users_bytes`` bytes of users CSV can hold: when even this is one
    shard's worth, the month is one shard without reading a byte of it."""
    return max(0, users_bytes) // MIN_ROW_BYTES


def count_rows(chunks: Iterable[bytes]) -> int:
    """Data rows of one CSV file streamed in chunks: its lines minus the header (a last line
    without a newline counts; blank files count 0)."""
    lines, last = 0, b"\n"
    for chunk in chunks:
        if chunk:
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - 1)


def in_shard(shard: int, name: str) -> str:
    """A file of a shard as a violation names it: ``shard-00003/users/part-00000.csv``."""
    return f"shard-{shard:05d}/{name}"


def shard_of_file(name: str) -> int | None:
    """The shard a violation's file is in (``in_shard``'s inverse), None for a month file."""
    head, _, rest = name.partition("/")
    if not rest or not head.startswith("shard-") or not head[6:].isdigit():
        return None
    return int(head[6:])
