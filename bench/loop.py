"""Loop latency on a warm stack: upload a month → ``[SUMMARY]``, each step's wall time and
its function's peak memory (the worker's REPORT line, like Lambda's ``Max Memory Used``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable

from streamflow_local.config import StackConfig
from streamflow_local.stack_client import (_client, data_bucket, execution_steps, function_environment, seed,
                                           upload_month, wait_for_execution)
from streamflow_local.views import ingest_rejection_since

from .stack import function_names, log_offsets, peak_memory_since

STATE_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "Validate": ("ValidateFunction",), "BuildFeatures": ("FeaturesFunction",),
    "PublishOnlineFeatures": ("PublishFunction",), "DetectDrift": ("DriftFunction",),
    "TrainChallenger": ("TrainFunction",), "Compare": ("CompareFunction",), "Promote": ("PromoteFunction",),
    "Summary": ("SummaryFunction",), "ShardMonth": ("ValidateFunction",), "MergeShards": ("FeaturesFunction",),
    # A Distributed Map's line: the largest peak among the functions its child executions run.
    "SplitParts": ("ValidateFunction",), "PartsSplit": ("ValidateFunction",),
    "ValidateShards": ("ValidateFunction", "FeaturesFunction"),
    "PublishShards": ("PublishFunction",), "MarkMonthPublished": ("PublishFunction",),
    "ScoreShards": ("CompareFunction",),
}
PART_USERS = 250_000  # months larger than this are seeded in parts, as `streamflow seed --parts` writes them


def seed_parts(n_users: int) -> int | None:
    """Parts per table for a month of ``n_users`` (None: whole files): a big month is seeded
    a block of users at a time, so the benchmark's own memory stays bounded too."""
    return math.ceil(n_users / PART_USERS) if n_users > PART_USERS else None


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def clear_month(config: StackConfig, month: str) -> int:
    """Delete ``months/<month>/`` from the data bucket before the month is uploaded again:
    the same month uploaded at another size (one file a table, or another number of parts)
    leaves files its new manifest does not list, and ingest rightly rejects such a month."""
    s3 = _client(config, "s3")
    bucket = data_bucket(config)
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"months/{month}/"):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def run_month(config: StackConfig, folder: Path) -> dict[str, Any]:
    names = function_names(config)
    offsets = log_offsets(config)
    clear_month(config, folder.name)
    since = dt.datetime.now(dt.timezone.utc)
    upload = upload_month(config, folder)
    description = wait_for_execution(config, upload.execution_arn, timeout=3600,  # a rejection ends the wait
                                     not_started=lambda: ingest_rejection_since(config, upload.month, since))
    if description["status"] != "SUCCEEDED":
        raise RuntimeError(f"{folder.name}: {description['status']}: {description.get('cause')}")
    # To the execution's recorded end, not to when the wait saw it (it looks every 0.25 s):
    # the emulator and this process read the same clock.
    seconds = (description["stopDate"] - since).total_seconds()
    steps = []
    for step in execution_steps(config, upload.execution_arn):
        logicals = STATE_FUNCTIONS.get(step["state"], ())
        if not logicals and step["seconds"] in (None, 0):
            continue
        peaks = [peak_memory_since(config, names.get(logical, ""), offsets) for logical in logicals]
        known = [peak for peak in peaks if peak is not None]
        steps.append({"state": step["state"], "seconds": round(step["seconds"] or 0.0, 3),
                      "peak_mb": max(known) if known else None})
    ingest_mb = peak_memory_since(config, names.get("IngestFunction", ""), offsets)
    output = json.loads(description["output"])
    return {"month": folder.name, "seconds": round(seconds, 3), "upload_seconds": round(upload.seconds, 3),
            "steps": steps, "ingest_peak_mb": ingest_mb,
            "summary": {k: output.get(k) for k in ("drift_share", "retrained", "promoted", "production_version")}}


def fixed_reference(config: StackConfig, month: str = "month_000") -> AbstractContextManager[None]:
    """ReferenceMonth pinned to ``month`` for the timed uploads (the ingest function passes
    it to each execution), restored afterwards: the default (the champion's month) would
    measure a repeated month_001 against the month_001 champion, find no drift and skip
    the path the benchmark times."""
    return function_environment(config, function_names(config)["IngestFunction"], REFERENCE_MONTH=month)


def loop_latency(config: StackConfig, n_users: int, repeats: int = 1,
                 before_each: Callable[[], object] | None = None) -> dict[str, Any]:
    """month_000 warms the stack (and is the drift reference, pinned: ``fixed_reference``),
    then month_001 is timed: drift → train → compare → promote, the longest path. With
    ``repeats`` > 1 the same month_001 is uploaded again under a new seed so every run takes
    that path. ``before_each`` is called right before each timed month (the benchmark times
    the compute floor there, so each run has one measured beside it)."""
    with fixed_reference(config):
        return _loop_latency(config, n_users, repeats, before_each or (lambda: None))


def _loop_latency(config: StackConfig, n_users: int, repeats: int, before_each: Callable[[], object]) -> dict[str, Any]:
    from streamflow import registry

    model_name = _client(config, "lambda").get_function_configuration(
        FunctionName=function_names(config)["CompareFunction"])["Environment"]["Variables"]["MODEL_NAME"]
    data = config.state_dir / f"data-{n_users}"
    folders = seed(data, months=2, n_users=n_users, parts=seed_parts(n_users))
    warmup = run_month(config, folders[0])
    champion = registry.alias_version(config.mlflow_uri, model_name)  # trained on month_000
    before_each()
    runs = [run_month(config, folders[1])]
    for extra in range(1, repeats):
        other = seed(config.state_dir / f"data-{n_users}-r{extra}", months=2, n_users=n_users,
                     seed_value=1000 + extra, parts=seed_parts(n_users))
        run_month(config, other[0])
        # Each timed month meets month_000's champion, as the first did: against the last
        # run's challenger (the same month, other users) it would rarely win by the delta,
        # and a run without Promote is a shorter path than the one timed first.
        if champion is not None:
            registry.move_alias(config.mlflow_uri, model_name, registry.PRODUCTION, champion)
        before_each()
        runs.append(run_month(config, other[1]))
    ordered = sorted(runs, key=lambda r: r["seconds"])
    seeded = sum(folder_bytes(p) for p in config.state_dir.glob(f"data-{n_users}*"))
    return {"users": n_users, "warmup": warmup, "runs": runs, "median": ordered[len(ordered) // 2],
            "parts": seed_parts(n_users), "seeded_mb": round(seeded / 1e6, 1),
            # the stack's state folder (S3 objects, tables, registry, logs) without the seeded CSVs
            "stack_disk_mb": round((folder_bytes(config.state_dir) - seeded) / 1e6, 1)}
