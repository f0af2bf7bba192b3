"""Validate and BuildFeatures shard by shard, for a month bigger than one function.

``ShardMonth`` (the Validate function, ``action: shard``) decides how many shards the month
gets: ``sharding.shard_count`` of its users, ``UsersPerShard`` users a shard. One shard (every
month up to ``UsersPerShard`` users) takes the one-shot path, unchanged: Validate, then
BuildFeatures. With more, it re-partitions the month by ``shard_of(user_id, S)`` one uploaded
file at a time, the next file read and the last one's parts written in threads meanwhile
(memory: a few files, never the month), each shard a partitioned month of its
own under ``shards/<month>/shard-NNNNN/``, and writes the items of the Distributed Map
``ValidateShards``. Each child validates its shard (violations are returned, not raised, so
every shard reports) and builds its features. ``MergeShards`` (the Features function,
``action: merge``) rejects the whole month when any shard broke a rule (quarantine and
report as the one-shot path, each violation naming its shard), else writes the month's
bounded samples: DetectDrift and TrainChallenger read those, ScoreShards scores the
holdout shard by shard for Compare (``compare_shards``) and PublishShards publishes each
shard's features (``publish_steps``), so no step holds a sharded month whole and no whole-month features
file is written: MergeShards' memory is two samples, not the month.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from itertools import islice
from typing import Any

from . import storage
from .logs import logger
from .parts import folder_of, group_files, part_name
from .quarantine import quarantine_month, report_key
from .schema import MONTH_FILES, TARGET, month_index
from .settings import Settings
from .sharding import (
    ShardSummary,
    count_rows,
    in_shard,
    items_key,
    merge,
    reshard,
    shard_count,
    shard_features_key,
    shard_folder,
    shard_items,
    shards_prefix,
    users_upper_bound,
)
from .violations import ContractError, Violation, check_sizes

Step = Callable[[Settings, dict[str, Any]], dict[str, Any]]
VIOLATIONS_PER_SHARD = 20  # what a shard reports (its count is exact): the Map's output stays small
_CHUNK = 1024 * 1024
IO_THREADS = 4  # ShardMonth: S3 reads ahead and writes behind while it re-partitions


def route(whole: Step, per_shard: Step, **actions: Step) -> Step:
    """One function, several steps: ``actions[event["action"]]`` when the state names one,
    ``per_shard`` for a Distributed Map item (it names its ``shard``), else ``whole`` (the
    one-shot path, unchanged). Sharing the function keeps the one-shard path at one warm
    environment: ShardMonth's cold start is the one Validate then reuses."""

    def step(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
        action = event.get("action")
        if action is not None:
            if action not in actions:
                raise ValueError(f"unknown action {action!r} (this function knows {sorted(actions)})")
            return actions[action](settings, event)
        if "shard" in event:
            return per_shard(settings, event)
        return whole(settings, event)

    step.__name__ = whole.__name__
    step.__doc__ = whole.__doc__
    return step


def _stream(bucket: str, key: str) -> Iterator[bytes]:
    yield from storage.s3().get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(_CHUNK)


def _reject(settings: Settings, month: str, violations: list[Violation], execution: str | None) -> None:
    """Quarantine the month as the one-shot Validate does, drop its shards, raise."""
    quarantine_month(settings.data_bucket, month, "validate", violations, execution)
    _delete_prefix(settings.data_bucket, shards_prefix(month))
    logger.error(f"MONTH_REJECTED month={month} quarantine=s3://{settings.data_bucket}/{report_key(month)}",
                 extra={"violations": [str(v) for v in violations[:20]]})
    raise ContractError(month, violations)


def _keys(bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in storage.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def _delete_prefix(bucket: str, prefix: str) -> None:
    keys = _keys(bucket, prefix)
    for start in range(0, len(keys), 1000):
        storage.s3().delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]],
                                                            "Quiet": True})


def _layout_violations(sizes: dict[str, int], tables: dict[str, list[str]], unknown: list[str],
                       layout: list[Violation], max_file_bytes: int) -> list[Violation]:
    """The month-level rules ``check_month`` applies, here before the month is split."""
    broken = {v.file for v in layout}
    violations = check_sizes(sizes, max_file_bytes)
    violations += [Violation(name, "", "required file missing") for name in MONTH_FILES
                   if name not in tables and name not in broken and f"{folder_of(name)}/" not in broken]
    violations += layout + [Violation(name, "", "unknown file") for name in unknown]
    return violations


def _changed(name: str, body: bytes, verified: dict[str, str]) -> Violation | None:
    """``checksums.changed_since_ingest`` for one file, so the month is hashed a file at a time."""
    if not verified:
        return None
    if name not in verified:
        return Violation(name, "", "appeared after ingest verified the month")
    if hashlib.sha256(body).hexdigest() != verified[name]:
        return Violation(name, "", "changed after ingest verified it", f"expected sha256 {verified[name]}")
    return None


class _ShardWriter:
    """Each uploaded file's rows, routed to their users' shards: one part per (file, shard).

    A part's name is chosen here, in file order (so a shard's parts are numbered without
    gaps, whatever order the writes end in); its PUT goes to ``pool`` and runs while the
    next file is re-partitioned. At most ``max_pending`` writes wait: memory is about one
    file's rows in flight, not the month."""

    def __init__(self, bucket: str, month: str, shards: int, pool: Executor, max_pending: int = 0):
        self.bucket, self.month, self.shards = bucket, month, shards
        self.parts: dict[tuple[str, int], int] = defaultdict(int)
        self.rows: dict[str, list[int]] = {table: [0] * shards for table in MONTH_FILES}
        self.headers: dict[str, bytes] = {}
        self.pool = pool
        self.pending: deque[Future[None]] = deque()
        self.max_pending = max_pending or 2 * shards

    def add(self, table: str, name: str, body: bytes) -> Violation | None:
        self.headers.setdefault(table, body.split(b"\n", 1)[0].rstrip(b"\r") + b"\n")
        pieces: dict[int, list[bytes]] = defaultdict(list)
        try:
            counts = reshard([(table, body)], self.shards, lambda _t, n, piece: pieces[n].append(piece))
        except (KeyError, ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
            return Violation(name, "", "must be a CSV file with a user_id column and as many fields a row as "
                             "its header", str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__)
        for shard, chunks in sorted(pieces.items()):
            self._put(table, shard, b"".join(chunks))
        for shard, count in enumerate(counts.get(table, [])):
            self.rows[table][shard] += count
        return None

    def _put(self, table: str, shard: int, body: bytes) -> None:
        index = self.parts[(table, shard)]
        self.parts[(table, shard)] = index + 1
        key = shard_folder(self.month, shard) + part_name(table, index)
        while len(self.pending) >= self.max_pending:
            self.pending.popleft().result()  # a failed write raises here
        self.pending.append(self.pool.submit(storage.put_bytes, self.bucket, key, body, content_type="text/csv"))

    def finish(self) -> None:
        """A shard no row of a table reached still gets the table (its header): the shard's
        check then names it ("must have at least one data row") instead of a missing file.
        Returns once every part is written."""
        for table, header in self.headers.items():
            for shard in range(self.shards):
                if not self.parts[(table, shard)]:
                    self._put(table, shard, header)
        while self.pending:
            self.pending.popleft().result()


def _read_ahead(pool: Executor, bucket: str, keys: list[str], ahead: int = 1) -> Iterator[bytes]:
    """The objects' bodies in order, the next ``ahead`` downloading while one is worked on."""
    futures: deque[Future[bytes]] = deque()
    waiting = iter(keys)
    for key in islice(waiting, ahead + 1):
        futures.append(pool.submit(storage.get_bytes, bucket, key))
    while futures:
        body = futures.popleft().result()
        following = next(waiting, None)
        if following is not None:
            futures.append(pool.submit(storage.get_bytes, bucket, following))
        yield body


def shard_month(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """How many shards the month gets; with more than one, the month split into them and the
    Distributed Map's items written. Month-level rules (sizes, layout, checksums since
    ingest) are checked here, as the one-shot Validate checks them."""
    month = event["month"]
    month_index(month)
    bucket, per_shard = settings.data_bucket, settings.users_per_shard
    sizes = storage.month_file_sizes(bucket, month)
    tables, unknown, layout = group_files(sizes)
    users_files = tables.get("users.csv", [])
    outcome: dict[str, Any] = {"bucket": bucket, "users_per_shard": per_shard,
                               "concurrency": max(1, int(event.get("concurrency") or 1)), "shards": 1}
    if users_upper_bound(sum(sizes[name] for name in users_files)) <= per_shard:
        return outcome  # small enough without reading it: the one-shot path
    prefix = storage.month_prefix(month)
    users = sum(count_rows(_stream(bucket, prefix + name)) for name in users_files)
    shards = shard_count(users, per_shard)
    outcome.update(users=users, shards=shards)
    if shards == 1:
        return outcome
    violations = _layout_violations(sizes, tables, unknown, layout, settings.max_file_bytes)
    if violations:
        _reject(settings, month, violations, event.get("execution"))
    _delete_prefix(bucket, shards_prefix(month))  # a run before this one may have split it otherwise
    verified = event.get("files") or {}
    files = [(table, name) for table in MONTH_FILES for name in tables[table]]
    # S3 reads ahead and writes behind in threads while this one re-partitions (pandas): the
    # emulator or S3 serves them meanwhile, so the step is not its reads + CPU + writes in a row
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="shard-io") as pool:
        writer = _ShardWriter(bucket, month, shards, pool)
        bodies = _read_ahead(pool, bucket, [prefix + name for _, name in files])
        for (table, name), body in zip(files, bodies):
            problem = _changed(name, body, verified) or (None if violations else writer.add(table, name, body))
            if problem:
                violations.append(problem)
        violations += [Violation(name, "", "changed after ingest verified it", f"expected sha256 {digest}")
                       for name, digest in sorted(verified.items()) if name not in sizes]
        if violations:
            _reject(settings, month, violations, event.get("execution"))
        writer.finish()
    items = [dict(item, execution=event.get("execution", "")) for item in shard_items(month, shards)]
    storage.put_json(bucket, items_key(month), items)
    logger.info("month sharded", extra={"users": users, "shards": shards, "rows": writer.rows})
    return {**outcome, "items_key": items_key(month)}


def _shard_files(bucket: str, month: str, shard: int) -> dict[str, bytes]:
    """The shard's CSV files by their names inside the shard (``users/part-00000.csv``)."""
    folder = shard_folder(month, shard)
    return {key[len(folder):]: storage.get_bytes(bucket, key) for key in _keys(bucket, folder)
            if key.endswith(".csv")}


def validate_shard(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """One shard's data contract (every per-user rule holds shard by shard: a user's rows are
    all in its shard). A violation is reported, not raised: MergeShards rejects the month
    with every shard's violations, not only the first shard's to fail."""
    from .contract import check_month

    month, shard = event["month"], int(event["shard"])
    month_index(month)
    result = check_month(_shard_files(settings.data_bucket, month, shard))
    summary = ShardSummary(shards=[shard], rows={name: int(len(frame)) for name, frame in result.tables.items()},
                           violations=[{"shard": shard, "file": v.file, "column": v.column, "rule": v.rule,
                                        "example": v.example} for v in result.violations[:VIOLATIONS_PER_SHARD]])
    if result.violations:
        logger.warning(f"shard {shard} of {month} breaks the data contract: {result.summary(3)}")
    return {"valid": result.ok, "violation_count": len(result.violations), **summary.to_json()}


def build_shard_features(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """One valid shard's features to ``shards/<month>/shard-NNNNN/features.parquet``."""
    from .contract import check_month
    from .features import build_features
    from .samples import label_counts

    month, shard = event["month"], int(event["shard"])
    result = check_month(_shard_files(settings.data_bucket, month, shard))
    if not result.ok:  # ValidateShard passed it: the shard changed since
        raise ContractError(f"{month} shard {shard}", result.violations)
    frame = build_features(result.tables)
    key = shard_features_key(month, shard)
    storage.write_frame(settings.data_bucket, key, frame)
    labels = label_counts(frame) if TARGET in frame else None  # every user's: the month's churn rate
    return {"features_key": key, "users": int(len(frame)), "label_counts": labels,
            **_write_shard_samples(settings, month, shard, frame)}


def _write_shard_samples(settings: Settings, month: str, shard: int, frame: Any) -> dict[str, Any]:
    """The shard's part of the month's samples (``samples``): its bottom-k for drift, and per
    label the bottom-k of its non-holdout users with their counts, for training."""
    from .month_reads import shard_drift_sample_key, shard_train_candidates_key
    from .samples import bottom_k, label_counts, train_candidates, training_users

    bucket = settings.data_bucket
    storage.write_frame(bucket, shard_drift_sample_key(month, shard), bottom_k(frame, settings.drift_sample_size))
    training = training_users(frame)
    storage.write_frame(bucket, shard_train_candidates_key(month, shard),
                        train_candidates(training, settings.train_sample_size))
    return {"train_counts": label_counts(training)}


def _merge_samples(settings: Settings, month: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The month's drift and training samples from the shards' parts: exact merges, read a
    shard at a time (memory: two samples, never the month)."""
    from .month_reads import drift_sample_key, shard_drift_sample_key, shard_train_candidates_key, train_sample_key
    from .samples import merge_bottom_k, stratified

    bucket, shards = settings.data_bucket, [int(r["shard"]) for r in results]
    drift = merge_bottom_k((storage.read_frame(bucket, shard_drift_sample_key(month, n)) for n in shards),
                           settings.drift_sample_size)
    storage.write_frame(bucket, drift_sample_key(month), drift)
    counts = [r["features"]["train_counts"] for r in results]
    train = stratified((storage.read_frame(bucket, shard_train_candidates_key(month, n)) for n in shards), counts,
                       settings.train_sample_size)
    storage.write_frame(bucket, train_sample_key(month), train)
    totals = {label: sum(int(c.get(label, 0)) for c in counts) for label in ("0", "1")}
    return {"drift_sample_key": drift_sample_key(month), "drift_sample_users": int(len(drift)),
            "train_sample_key": train_sample_key(month), "train_sample_users": int(len(train)),
            "train_counts": totals}


def shard_violations(results: list[dict[str, Any]]) -> list[Violation]:
    """Every violation the shards reported, its file named inside its shard."""
    found: list[Violation] = []
    for result in sorted(results, key=lambda r: int(r["shard"])):
        for v in result.get("summary", {}).get("violations", []):
            found.append(Violation(in_shard(int(v["shard"]), v["file"]), v["column"], v["rule"], v.get("example", "")))
    return found


def churn_rate(results: list[dict[str, Any]]) -> float | None:
    """The month's churn rate from the shards' label counts (exact: integer counts), None when
    a shard's features have no label."""
    counts = [r["features"].get("label_counts") for r in results]
    if not counts or any(c is None for c in counts):
        return None
    churned = sum(int(c.get("1", 0)) for c in counts)
    users = churned + sum(int(c.get("0", 0)) for c in counts)
    return round(churned / users, 4) if users else None


def merge_shards(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """The shards' verdicts, merged: any violation rejects the whole month; else the month's
    samples, and what Validate and BuildFeatures return on the one-shot path (``validation``,
    with ``features`` in it: ``shards`` and ``shards_prefix`` instead of a features file)."""
    month = event["month"]
    results = sorted(event["shards"], key=lambda r: int(r["shard"]))
    violations = shard_violations(results)
    if violations:
        _reject(settings, month, violations, event.get("execution"))
    merged = merge(ShardSummary.from_json(r["summary"]) for r in results)
    users = sum(int(r["features"]["users"]) for r in results)
    # A features file a one-shot run of this month left would outlive these shards' features.
    storage.delete(settings.data_bucket, storage.features_key(month))
    logger.info("shards merged", extra={"shards": len(results), "users": users})
    features = {"shards_prefix": shards_prefix(month), "users": users, "churn_rate": churn_rate(results),
                "shards": len(results), **_merge_samples(settings, month, results)}
    return {"valid": True, "users": merged.rows.get("users.csv", users), "rows": merged.rows,
            "shards": len(results), "features": features}
