"""What each child of a Distributed Map reports, kept in S3 instead of the execution's state.

A Map's children's outputs would come back into the state as one array, S entries long,
and a state's input or output is limited to 256 KiB on AWS (≈ 300 shards of
ValidateShards' summaries). So each child writes its result as a small JSON record at a
key fixed by the month, the shard and the step (``shards/<month>/shard-NNNNN/<step>.json``,
beside the shard's parquet files), the Map drops the outputs (``ResultPath: null``), and the
step after the Map reads the S records back, knowing S from ``$.sharding``. A ``ResultWriter``
would do this on AWS, but moto 5.2.5 writes only its manifest, and these records run the
same locally and on AWS.

The Map reported every child as succeeded before its next step runs, so a record that is
missing, or was written by another execution of the month, is an error naming the shard:
never a shard silently left out of the month's verdict, totals or AUC.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import storage
from .sharding import shard_folder

VALIDATED, FEATURES, PUBLISHED, SCORED = "validated", "features", "published", "scored"
READ_THREADS = 8  # GETs side by side: 500 records in ≈ 500 × 20 ms / 8


class ShardRecordMissing(RuntimeError):
    """A shard the Map reported as done left no record of this execution."""


def record_key(month: str, shard: int, step: str) -> str:
    """``shards/<month>/shard-00003/validated.json``."""
    return f"{shard_folder(month, shard)}{step}.json"


def write(bucket: str, month: str, shard: int, step: str, execution: str | None, result: dict[str, Any]) -> str:
    """The child's result, with the execution that made it (a stale record is told apart)."""
    key = record_key(month, shard, step)
    storage.put_json(bucket, key, {**result, "shard": shard, "execution": execution or ""})
    return key


def checked(record: dict[str, Any] | None, month: str, shard: int, step: str, execution: str | None) -> dict[str, Any]:
    """The record if it is this execution's (pure); else ShardRecordMissing naming the shard."""
    key = record_key(month, shard, step)
    if record is None:
        raise ShardRecordMissing(f"shard {shard} of {month} left no {step} record ({key}) though its child "
                                 "execution succeeded")
    if (record.get("execution") or "") != (execution or ""):
        raise ShardRecordMissing(f"shard {shard} of {month}: {key} was written by execution "
                                 f"{record.get('execution') or '(none)'}, not {execution or '(none)'}")
    return record


def _get(bucket: str, key: str) -> dict[str, Any] | None:
    body = storage.get_bytes_if_present(bucket, key)
    return None if body is None else json.loads(body)


def read_all(bucket: str, month: str, shards: list[int] | int, step: str, execution: str | None) -> list[dict[str, Any]]:
    """Every listed shard's record (``shards``: a count means shards 0 … S-1), in shard order,
    each checked (``checked``): memory is S small records, the state carries none of them."""
    numbers = list(range(shards)) if isinstance(shards, int) else sorted(shards)
    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="records") as pool:
        found = list(pool.map(lambda n: _get(bucket, record_key(month, n, step)), numbers))
    return [checked(record, month, n, step, execution) for n, record in zip(numbers, found)]
