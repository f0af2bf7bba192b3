"""From a manifest's S3 event to exactly one state machine execution for the month, or a
quarantine: never files left in ``months/<month>/`` with neither.

A month is accepted when its manifest keeps the schema (``manifest.py``), carries no policy
(unless the stack allows checked overrides), and lists exactly the files under the month's
prefix with their sizes and SHA-256 (``checksums.py``). The execution name is derived from
the month and the manifest's content, so an event delivered twice, or the same month
uploaded again, maps to the same name and Step Functions starts it once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import checksums, storage
from .arrivals import wait_for_listed_files
from .causes import one_line
from .logs import logger
from .manifest import ManifestError, Manifest, parse, policy_overrides
from .quarantine import quarantine_month
from .reruns import content_executions, execution_for
from .schema import MANIFEST_NAME
from .settings import Settings
from .violations import Violation

__all__ = ["ManifestError", "MonthUpload", "month_from_key", "execution_name", "check_manifest",
           "execution_input", "start_month_execution"]


@dataclass(frozen=True)
class MonthUpload:
    bucket: str
    month: str
    manifest_key: str


@dataclass(frozen=True)
class AcceptedMonth:
    manifest: Manifest
    overrides: dict[str, Any] = field(default_factory=dict)
    digests: dict[str, checksums.ObjectDigest] = field(default_factory=dict)


def month_from_key(bucket: str, key: str) -> MonthUpload | None:
    """``months/month_001/_MANIFEST.json`` → the upload; None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != storage.MONTHS_PREFIX.rstrip("/") or parts[2] != MANIFEST_NAME:
        return None
    return MonthUpload(bucket=bucket, month=parts[1], manifest_key=key)


def execution_name(month: str, manifest_body: bytes) -> str:
    return f"{month}-{hashlib.sha256(manifest_body).hexdigest()[:16]}"


def _month_processed(bucket: str, month: str) -> bool:
    """A reference month must have features to compare against (a file, or a sharded
    month's drift sample)."""
    from .month_reads import month_processed

    return month_processed(bucket, month)


def check_manifest(upload: MonthUpload, body: bytes, allow_overrides: bool = False,
                   wait_for_files: Callable[[str, str, Iterable[str]], object] | None = None) -> AcceptedMonth:
    """The manifest keeps its schema and policy rule, and the bucket holds exactly the files
    it lists, byte for byte (size, then SHA-256). ManifestError names what differs.
    ``wait_for_files(bucket, month, names)`` first, when given: files still arriving."""
    key = upload.manifest_key
    manifest = parse(key, body, upload.month, allow_overrides)
    overrides = policy_overrides(key, manifest, allow_overrides, lambda m: _month_processed(upload.bucket, m))
    if wait_for_files is not None:
        wait_for_files(upload.bucket, upload.month, manifest.files)
    in_bucket = storage.month_file_sizes(upload.bucket, upload.month)
    unlisted = sorted(set(in_bucket) - set(manifest.files))
    if unlisted:
        raise ManifestError(key, [Violation(name, "", "file is in the month's folder but not in the manifest")
                                  for name in unlisted])
    digests: dict[str, checksums.ObjectDigest] = {}
    violations: list[Violation] = []
    for name, entry in sorted(manifest.files.items()):
        digest = checksums.object_digest(upload.bucket, storage.month_prefix(upload.month) + name,
                                         entry.sha256, entry.bytes)
        if digest is None:
            violations.append(Violation(name, "", "listed in the manifest but not in the bucket"))
        elif digest.size != entry.bytes:
            violations.append(Violation(name, "", "size differs from the manifest",
                                        f"{digest.size} bytes, manifest says {entry.bytes}"))
        elif digest.sha256 != entry.sha256:
            violations.append(Violation(name, "", "sha256 differs from the manifest",
                                        f"expected {entry.sha256}, actual {digest.sha256}"))
        else:
            digests[name] = digest
    if violations:
        raise ManifestError(key, violations)
    return AcceptedMonth(manifest, overrides, digests)


def execution_input(settings: Settings, month: str, name: str, overrides: dict[str, Any],
                    files_key: str | None = None) -> dict[str, Any]:
    """Policy from the template parameters; a manifest's only with AllowManifestOverrides.
    ``files_key``: where the verified digests are (name → SHA-256, ``checksums.put_verified``),
    which ShardMonth and Validate read to refuse bytes changed since; a key, not the digests,
    so the state is the same size whatever the number of files."""
    settings.require_policy()
    return {
        "month": month,
        "execution": name,
        **({"files_key": files_key} if files_key else {}),
        "reference_month": settings.reference_month,
        "threshold": float(settings.drift_threshold),
        "delta": float(settings.promotion_delta),
        "require_approval": settings.require_approval,
        "approval_timeout_seconds": settings.approval_timeout_seconds,
        **overrides,
    }


def _reject(upload: MonthUpload, violations: list[Violation], reason: str) -> dict[str, Any]:
    report = quarantine_month(upload.bucket, upload.month, "ingest", violations)
    return {"month": upload.month, "started": False, "rejected": True, "reason": reason,
            "report": f"s3://{upload.bucket}/{report}"}


def _manifest_body(upload: MonthUpload) -> bytes | None:
    return storage.get_bytes_if_present(upload.bucket, upload.manifest_key)


def start_month_execution(settings: Settings, upload: MonthUpload) -> dict[str, Any]:
    """Start the month's execution (or find the one already started for this content); any
    fault on the way, expected or not, quarantines the month with a report instead."""
    try:
        body = _manifest_body(upload)
        if body is None:  # a repeated event for a month already quarantined or replaced
            return {"month": upload.month, "started": False, "ignored": True, "reason": "manifest no longer there"}
        accepted = check_manifest(upload, body, settings.allow_manifest_overrides, wait_for_listed_files)
        name = execution_name(upload.month, body)
        name, status = execution_for(name, content_executions(_stepfunctions(), settings.state_machine_arn, name))
        if status is not None:  # a repeated event: the execution of this content runs or succeeded
            return _duplicate(upload.month, name, status)
        files_key = checksums.put_verified(upload.bucket, upload.month, name,
                                           {n: d.sha256 for n, d in accepted.digests.items()})
        payload = execution_input(settings, upload.month, name, accepted.overrides, files_key)
        return _start(settings, upload.month, name, payload, accepted)
    except ManifestError as exc:
        return _reject(upload, exc.violations, str(exc))
    except Exception as exc:  # noqa: BLE001 - the month must not be left half-accepted
        logger.exception("ingest failed unexpectedly")
        reason = f"ingest failed: {type(exc).__name__}: {one_line(str(exc), 200)}"
        return _reject(upload, [Violation(MANIFEST_NAME, "", reason + "; upload the month again")], reason)


def _start(settings: Settings, month: str, name: str, payload: dict[str, Any], accepted: AcceptedMonth) -> dict[str, Any]:
    sfn = _stepfunctions()
    logger.info("month accepted", extra={"files": {n: d.method for n, d in accepted.digests.items()},
                                          "overrides": accepted.overrides})
    try:
        response = sfn.start_execution(stateMachineArn=settings.state_machine_arn, name=name,
                                       input=json.dumps(payload, sort_keys=True))
        return {"month": month, "execution": name, "execution_arn": response["executionArn"], "started": True}
    except sfn.exceptions.ExecutionAlreadyExists:  # started by a repeated event in between
        return _duplicate(month, name, None)


def _duplicate(month: str, name: str, status: str | None) -> dict[str, Any]:
    return {"month": month, "execution": name, "started": False, "duplicate": True, "status": status}


def _stepfunctions():
    import boto3

    return boto3.client("stepfunctions")
