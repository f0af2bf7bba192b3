"""Rejected months are moved, not lost: ``months/<m>/…`` → ``quarantine/<m>/…`` plus a
machine-readable ``_REJECTION.json`` that names every broken rule (file, column, rule).

The bucket is versioned, so even the "delete" half of the move keeps the old versions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from . import storage
from .violations import Violation

QUARANTINE_PREFIX = "quarantine/"
REPORT_NAME = "_REJECTION.json"


def quarantine_prefix(month: str) -> str:
    return f"{QUARANTINE_PREFIX}{month}/"


def report_key(month: str) -> str:
    return quarantine_prefix(month) + REPORT_NAME


def rejection_report(month: str, stage: str, violations: list[Violation], execution: str | None,
                     moved: list[str]) -> dict[str, Any]:
    return {
        "month": month,
        "stage": stage,
        "rejected_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "execution": execution,
        "message": "; ".join(str(v) for v in violations[:20]),
        "violations": [v.to_json() for v in violations],
        "quarantined": moved,
    }


def quarantine_month(bucket: str, month: str, stage: str, violations: list[Violation],
                     execution: str | None = None) -> dict[str, Any]:
    """Move every object of the month to quarantine and write the rejection report there."""
    client = storage.s3()
    source = storage.month_prefix(month)
    moved: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=source):
        for item in page.get("Contents", []):
            target = quarantine_prefix(month) + item["Key"][len(source):]
            client.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": item["Key"]})
            client.delete_object(Bucket=bucket, Key=item["Key"])
            moved.append(target)
    report = rejection_report(month, stage, violations, execution, moved)
    storage.put_json(bucket, report_key(month), report, indent=2)
    return report
