"""Validate and BuildFeatures shard by shard, for a month bigger than one function.

``ShardMonth`` (the Validate function, ``action: shard``) decides how many shards the month
gets: ``sharding.shard_count`` of its users, ``UsersPerShard`` users a shard. One shard (every
month up to ``UsersPerShard`` users) takes the one-shot path, unchanged: Validate, then
BuildFeatures. With more, it checks the month-level rules and writes the items of the
Distributed Map ``SplitParts``, one per uploaded file, without reading the data files. Each
child (``action: split``) routes its one file's rows by ``shard_of(user_id, S)`` into part
``index`` of its table in every shard, so no task's time grows with the month: each shard
is a partitioned month of its own under ``shards/<month>/shard-NNNNN/``. ``PartsSplit``
(``action: items``) rejects the month if a child found a changed or unparsable file, else
writes the items of the Distributed Map ``ValidateShards``. Each child validates its shard
(violations are reported, not raised, so every shard reports) and builds its features, each
result written as a record in S3 (``shard_records``), not returned into the state.
``MergeShards`` (the Features function, ``action: merge``) rejects the whole month when any
shard broke a rule (quarantine and report as the one-shot path, each violation naming its
shard), else writes the month's bounded samples: DetectDrift and TrainChallenger read those,
ScoreShards scores the holdout shard by shard for Compare (``compare_shards``) and
PublishShards publishes each shard's features (``publish_steps``), so no step holds a sharded
month whole and no whole-month features file is written: MergeShards' memory is two samples,
not the month.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import checksums, shard_records, storage
from .logs import logger
from .parts import folder_of, group_files, part_name
from .quarantine import quarantine_month
from .schema import MONTH_FILES, TARGET, month_index
from .settings import Settings
from .sharding import (
    ShardSummary,
    count_rows,
    in_shard,
    items_key,
    merge,
    parts_key,
    reshard,
    shard_count,
    shard_features_key,
    shard_folder,
    shard_items,
    shards_prefix,
    split_report_key,
    split_reports_prefix,
    users_upper_bound,
)
from .violations import ContractError, Violation, check_sizes

Step = Callable[[Settings, dict[str, Any]], dict[str, Any]]
VIOLATIONS_PER_SHARD = 20  # what a shard reports (its count is exact): its record stays small
_CHUNK = 1024 * 1024
IO_THREADS = 4  # S3 calls side by side: ShardMonth's users files counted, a SplitParts child's pieces written


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
    report = quarantine_month(settings.data_bucket, month, "validate", violations, execution)
    _delete_prefix(settings.data_bucket, shards_prefix(month))
    logger.error(f"MONTH_REJECTED month={month} quarantine=s3://{settings.data_bucket}/{report}",
                 extra={"violations": [str(v) for v in violations[:20]]})
    raise ContractError(month, violations)


def _delete_prefix(bucket: str, prefix: str) -> None:
    keys = storage.keys(bucket, prefix)
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


def part_items(month: str, tables: dict[str, list[str]], shards: int, verified: dict[str, str],
               execution: str) -> list[dict[str, Any]]:
    """SplitParts' items: one per uploaded file, ``index`` its place in its table (a table
    uploaded whole is index 0), so the shards' parts are numbered as the upload's, without gaps."""
    return [{"month": month, "table": table, "name": name, "index": index, "shards": shards,
             "sha256": verified.get(name, ""), "execution": execution}
            for table in MONTH_FILES for index, name in enumerate(tables[table])]


def shard_month(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """How many shards the month gets; with more than one, the items of SplitParts written (one
    per uploaded file: the children split the month, ``split_part``). Month-level rules (sizes,
    layout, files added or gone since ingest) are checked here, as the one-shot Validate checks
    them. Reads the users files only, to count users (newlines, ``IO_THREADS`` files at a time):
    about a fifth of the month's bytes, and no parsing."""
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
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="count") as pool:  # S3 streams side by side
        users = sum(pool.map(lambda name: count_rows(_stream(bucket, prefix + name)), users_files))
    shards = shard_count(users, per_shard)
    outcome.update(users=users, shards=shards)
    if shards == 1:
        return outcome
    verified = checksums.read_verified(bucket, event) or {}
    violations = _layout_violations(sizes, tables, unknown, layout, settings.max_file_bytes)
    violations += checksums.added_or_gone(set(sizes), verified)
    if violations:
        _reject(settings, month, violations, event.get("execution"))
    _delete_prefix(bucket, shards_prefix(month))  # a run before this one may have split it otherwise
    items = part_items(month, tables, shards, verified, event.get("execution") or "")
    storage.put_json(bucket, parts_key(month), items)
    logger.info("month to split", extra={"users": users, "shards": shards, "parts": len(items)})
    return {**outcome, "parts": len(items), "parts_key": parts_key(month)}


def _split_violation(exc: Exception, name: str) -> Violation:
    return Violation(name, "", "must be a CSV file with a user_id column and as many fields a row as its header",
                     str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__)


def split_part(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """One SplitParts child: one uploaded file's rows routed to their users' shards, written as
    part ``index`` of its table in EVERY shard (header only where no row went), so each shard
    has every table, numbered without gaps. A changed file or one that does not parse is
    reported (``split_report_key``), not raised, so every file reports; the output is tiny."""
    month, table, name = event["month"], event["table"], event["name"]
    index, shards = int(event["index"]), int(event["shards"])
    month_index(month)
    bucket = settings.data_bucket
    body = storage.get_bytes(bucket, storage.month_prefix(month) + name)
    expected = event.get("sha256") or ""
    violation: Violation | None = None
    pieces: dict[int, list[bytes]] = defaultdict(list)
    counts: list[int] = [0] * shards
    if expected and hashlib.sha256(body).hexdigest() != expected:
        violation = checksums.changed_file(name, expected)
    else:
        try:
            counts = reshard([(table, body)], shards, lambda _t, n, piece: pieces[n].append(piece)).get(table, counts)
        except (KeyError, ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
            violation = _split_violation(exc, name)
    if violation is not None:
        storage.put_json(bucket, split_report_key(month, table, index), [violation.to_json()])
        logger.warning(f"{name} of {month} not split: {violation}")
        return {"name": name, "rows": 0, "violations": 1}
    header = body.removeprefix(codecs.BOM_UTF8).split(b"\n", 1)[0].rstrip(b"\r") + b"\n"
    del body
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="split-io") as pool:
        writes = [pool.submit(storage.put_bytes, bucket, shard_folder(month, n) + part_name(table, index),
                              b"".join(pieces.pop(n, [])) or header, content_type="text/csv") for n in range(shards)]
        for write in writes:
            write.result()  # a failed write fails the child (the Map names it)
    logger.info("part split", extra={"file": name, "rows": sum(counts), "shards": shards})
    return {"name": name, "rows": sum(counts), "violations": 0}


REPORTS_READ = 50  # PartsSplit reads at most this many children's reports (each one violation)


def write_shard_items(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """PartsSplit, after SplitParts: a child's violation rejects the month (quarantine, the
    report naming file and rule); else ValidateShards' items, and ShardMonth's result with
    their key. Its time is a listing of the children's reports, not the month."""
    month, bucket = event["month"], settings.data_bucket
    month_index(month)
    sharding = dict(event["sharding"])
    reports = sorted(storage.keys(bucket, split_reports_prefix(month)))
    if reports:
        violations = [Violation.from_json(v)
                      for key in reports[:REPORTS_READ] for v in json.loads(storage.get_bytes(bucket, key))]
        if len(reports) > REPORTS_READ:
            violations.append(Violation(f"{len(reports) - REPORTS_READ} more files", "", "not split: see the "
                                        f"reports under s3://{bucket}/{split_reports_prefix(month)}"))
        _reject(settings, month, violations, event.get("execution"))
    items = [dict(item, execution=event.get("execution") or "") for item in shard_items(month, int(sharding["shards"]))]
    storage.put_json(bucket, items_key(month), items)
    logger.info("month sharded", extra={"shards": sharding["shards"], "parts": sharding.get("parts")})
    return {**sharding, "items_key": items_key(month)}


def _shard_files(bucket: str, month: str, shard: int) -> dict[str, bytes]:
    """The shard's CSV files by their names inside the shard (``users/part-00000.csv``)."""
    folder = shard_folder(month, shard)
    return {key[len(folder):]: storage.get_bytes(bucket, key) for key in storage.keys(bucket, folder)
            if key.endswith(".csv")}


def validate_shard(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """One shard's data contract (every per-user rule holds shard by shard: a user's rows are
    all in its shard). A violation is reported, not raised: MergeShards rejects the month
    with every shard's violations, not only the first shard's to fail."""
    from .contract import check_month

    month, shard = event["month"], int(event["shard"])
    month_index(month)
    result = check_month(_shard_files(settings.data_bucket, month, shard), header_only_parts=True)
    summary = ShardSummary(shards=[shard], rows={name: int(len(frame)) for name, frame in result.tables.items()},
                           violations=[{"shard": shard, **v.to_json()}
                                       for v in result.violations[:VIOLATIONS_PER_SHARD]])
    if result.violations:
        logger.warning(f"shard {shard} of {month} breaks the data contract: {result.summary(3)}")
    outcome = {"valid": result.ok, "violation_count": len(result.violations), **summary.to_json()}
    shard_records.write(settings.data_bucket, month, shard, shard_records.VALIDATED, event.get("execution"), outcome)
    return outcome


def build_shard_features(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """One valid shard's features to ``shards/<month>/shard-NNNNN/features.parquet``."""
    from .contract import check_month
    from .features import build_features
    from .samples import label_counts

    month, shard = event["month"], int(event["shard"])
    result = check_month(_shard_files(settings.data_bucket, month, shard), header_only_parts=True)
    if not result.ok:  # ValidateShard passed it: the shard changed since
        raise ContractError(f"{month} shard {shard}", result.violations)
    frame = build_features(result.tables)
    key = shard_features_key(month, shard)
    storage.write_frame(settings.data_bucket, key, frame)
    labels = label_counts(frame) if TARGET in frame else None  # every user's: the month's churn rate
    outcome = {"features_key": key, "users": int(len(frame)), "label_counts": labels,
               **_write_shard_samples(settings, month, shard, frame)}
    shard_records.write(settings.data_bucket, month, shard, shard_records.FEATURES, event.get("execution"), outcome)
    return outcome


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
            found.append(Violation.from_json({**v, "file": in_shard(int(v["shard"]), v["file"])}))
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


def shard_results(settings: Settings, month: str, shards: int, execution: str | None) -> list[dict[str, Any]]:
    """What ValidateShards' children reported (``shard_records``, not the state): per shard its
    ``summary`` and, when the month is valid, its ``features``. A record missing is an error
    naming the shard (the Map said every child succeeded)."""
    bucket = settings.data_bucket
    summaries = shard_records.read_all(bucket, month, shards, shard_records.VALIDATED, execution)
    results = [{"shard": s["shard"], "summary": s} for s in summaries]
    if not any(s.get("violations") for s in summaries):
        built = shard_records.read_all(bucket, month, shards, shard_records.FEATURES, execution)
        for result, features in zip(results, built):
            result["features"] = features
    return results


def merge_shards(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """The shards' verdicts, merged: any violation rejects the whole month; else the month's
    samples, and what Validate and BuildFeatures return on the one-shot path (``validation``,
    with ``features`` in it: ``shards`` and ``shards_prefix`` instead of a features file).
    ``shards`` is the count (``$.sharding.shards``): the results are read from S3."""
    month = event["month"]
    month_index(month)
    results = shard_results(settings, month, int(event["shards"]), event.get("execution"))
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
