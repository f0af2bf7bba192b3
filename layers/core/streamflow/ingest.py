"""From a manifest's S3 event to exactly one state machine execution for the month.

The execution name is derived from the month and the manifest's content (which lists each
file's SHA-256), so an event delivered twice, or the same month uploaded again, maps to
the same name and Step Functions starts it once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from . import storage
from .violations import Violation
from .quarantine import quarantine_month, report_key
from .schema import MANIFEST_NAME, MONTH_PATTERN
from .settings import Settings


class ManifestError(ValueError):
    """The manifest is unreadable or names files that are not in the bucket."""

    def __init__(self, key: str, rule: str, example: str = ""):
        self.violation = Violation(MANIFEST_NAME, "", rule, example)
        super().__init__(f"{key}: {rule}" + (f" ({example})" if example else ""))


@dataclass(frozen=True)
class MonthUpload:
    bucket: str
    month: str
    manifest_key: str


def month_from_key(bucket: str, key: str) -> MonthUpload | None:
    """``months/month_001/_MANIFEST.json`` → the upload; None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != storage.MONTHS_PREFIX.rstrip("/") or parts[2] != MANIFEST_NAME:
        return None
    return MonthUpload(bucket=bucket, month=parts[1], manifest_key=key)


def execution_name(month: str, manifest_body: bytes) -> str:
    return f"{month}-{hashlib.sha256(manifest_body).hexdigest()[:16]}"


def check_manifest(upload: MonthUpload, body: bytes) -> dict[str, Any]:
    """The manifest must be JSON naming this month, and every file it lists must be there."""
    if not MONTH_PATTERN.match(upload.month):
        raise ManifestError(upload.manifest_key, "month name must match month_NNN", repr(upload.month))
    try:
        manifest = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(upload.manifest_key, "must be valid JSON", str(exc)[:120]) from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ManifestError(upload.manifest_key, "must be an object with a 'files' object")
    if manifest.get("month", upload.month) != upload.month:
        raise ManifestError(upload.manifest_key, f"names month {manifest.get('month')!r}, uploaded as {upload.month}")
    for name, meta in manifest["files"].items():
        size = storage.object_size(upload.bucket, storage.month_prefix(upload.month) + name)
        if size is None:
            raise ManifestError(upload.manifest_key, "lists a file that is not in the bucket", name)
        expected = meta.get("bytes") if isinstance(meta, dict) else None
        if expected is not None and int(expected) != size:
            raise ManifestError(upload.manifest_key, "file size differs from the manifest",
                                f"{name}: {size} bytes, manifest says {expected}")
    return manifest


def start_month_execution(settings: Settings, upload: MonthUpload) -> dict[str, Any]:
    """Start the month's execution (or find the one already started for this content)."""
    import boto3

    body = storage.get_bytes(upload.bucket, upload.manifest_key)
    try:
        manifest = check_manifest(upload, body)
    except ManifestError as exc:
        quarantine_month(upload.bucket, upload.month, "ingest", [exc.violation])
        return {"month": upload.month, "started": False, "rejected": True, "reason": str(exc),
                "report": f"s3://{upload.bucket}/{report_key(upload.month)}"}
    name = execution_name(upload.month, body)
    execution_input = {
        "month": upload.month,
        "reference_month": manifest.get("reference_month", settings.reference_month),
        "threshold": float(manifest.get("threshold", settings.drift_threshold)),
        "delta": float(manifest.get("delta", settings.promotion_delta)),
        "execution": name,
        # Set by the template only: an uploader cannot switch the approval gate off.
        "require_approval": settings.require_approval,
        "approval_timeout_seconds": settings.approval_timeout_seconds,
    }
    sfn = boto3.client("stepfunctions")
    try:
        response = sfn.start_execution(
            stateMachineArn=settings.state_machine_arn, name=name, input=json.dumps(execution_input, sort_keys=True)
        )
        return {"month": upload.month, "execution": name, "execution_arn": response["executionArn"], "started": True}
    except sfn.exceptions.ExecutionAlreadyExists:
        return {"month": upload.month, "execution": name, "started": False, "duplicate": True}
