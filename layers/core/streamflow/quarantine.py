"""Rejected months are moved, not lost: ``months/<m>/…`` → ``quarantine/<m>/<attempt>/…``
plus a machine-readable ``_REJECTION.json`` that names every broken rule (file, column, rule).

Each rejection gets its own attempt folder (its UTC time, so the folders sort in time order):
a month rejected twice keeps both attempts apart, each with its own files and report, where
one folder had mixed a file of the first attempt in with the second's. Reports written
before attempts had folders (``quarantine/<m>/_REJECTION.json``) are still read, as older
than any attempt's.

The bucket is versioned, so even the "delete" half of the move keeps the old versions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from . import storage
from .violations import Violation

QUARANTINE_PREFIX = "quarantine/"
REPORT_NAME = "_REJECTION.json"


def quarantine_prefix(month: str) -> str:
    return f"{QUARANTINE_PREFIX}{month}/"


def attempt_name(rejected_at: dt.datetime) -> str:
    """``20261201T150412.345Z``: sorts as the attempts happened, and reads as a time."""
    return rejected_at.strftime("%Y%m%dT%H%M%S.") + f"{rejected_at.microsecond // 1000:03d}Z"


def attempt_prefix(month: str, attempt: str) -> str:
    return f"{quarantine_prefix(month)}{attempt}/"


def report_key(month: str, attempt: str) -> str:
    return attempt_prefix(month, attempt) + REPORT_NAME


def newest_report_keys(keys: Iterable[str]) -> dict[str, str]:
    """``{month: the key of its newest rejection report}`` among ``keys`` (a listing of
    ``quarantine/``); a report straight in the month's folder predates attempt folders."""
    newest: dict[str, tuple[bool, str]] = {}
    for key in keys:
        if not key.startswith(QUARANTINE_PREFIX) or not key.endswith("/" + REPORT_NAME):
            continue
        month, _, rest = key[len(QUARANTINE_PREFIX):].partition("/")
        rank = (rest != REPORT_NAME, key)
        if month and rank > newest.get(month, (False, "")):
            newest[month] = rank
    return {month: key for month, (_, key) in newest.items()}


def newest_report_key(bucket: str, month: str) -> str | None:
    """The key of ``month``'s newest rejection report, None if it was never rejected."""
    return newest_report_keys(storage.keys(bucket, quarantine_prefix(month))).get(month)


def rejection_report(month: str, stage: str, violations: list[Violation], execution: str | None,
                     moved: list[str], rejected_at: dt.datetime) -> dict[str, Any]:
    return {
        "month": month,
        "stage": stage,
        "rejected_at": rejected_at.isoformat(timespec="milliseconds"),
        "execution": execution,
        "message": "; ".join(str(v) for v in violations[:20]),
        "violations": [v.to_json() for v in violations],
        "quarantined": moved,
    }


def quarantine_month(bucket: str, month: str, stage: str, violations: list[Violation],
                     execution: str | None = None) -> str:
    """Move every object of the month to a new attempt folder in quarantine and write the
    rejection report there; the report's key."""
    client = storage.s3()
    source = storage.month_prefix(month)
    rejected_at = dt.datetime.now(dt.timezone.utc)
    attempt = attempt_name(rejected_at)
    target_prefix = attempt_prefix(month, attempt)
    moved: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=source):
        for item in page.get("Contents", []):
            target = target_prefix + item["Key"][len(source):]
            client.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": item["Key"]})
            client.delete_object(Bucket=bucket, Key=item["Key"])
            moved.append(target)
    key = report_key(month, attempt)
    storage.put_json(bucket, key, rejection_report(month, stage, violations, execution, moved, rejected_at), indent=2)
    return key
