"""Is the object in S3 the file the manifest declared? Size, then SHA-256.

S3 keeps a checksum of what was uploaded when the client asked for one
(``ChecksumAlgorithm='SHA256'``, as ``streamflow upload`` does) and verifies it on the way
in; when that checksum is a full-object SHA-256 equal to the manifest's, the object is not
read again. Otherwise (no checksum, another algorithm, a multipart upload's composite
``…-N`` checksum, or a mismatch to be confirmed) the object is streamed through hashlib in
1 MiB chunks: a 100 MB file never sits in memory whole.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from . import storage
from .violations import Violation

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectDigest:
    """What the bucket holds under a key: size, SHA-256 (hex) and how it was learnt."""

    size: int
    sha256: str
    method: str  # "s3-checksum" or "streamed"


def full_object_sha256(head: dict) -> str | None:
    """The hex SHA-256 of the whole object from a ``HeadObject(ChecksumMode='ENABLED')``
    answer, or None when S3 has none (or only a composite one of a multipart upload)."""
    value = head.get("ChecksumSHA256")
    if not value or "-" in value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def stream_sha256(bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    body = storage.s3().get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in body.iter_chunks(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def object_digest(bucket: str, key: str, expected_sha256: str, expected_size: int | None = None) -> ObjectDigest | None:
    """Size and SHA-256 of ``key`` (None when it is not there). S3's own checksum is used
    when it equals ``expected_sha256``; anything else is confirmed by reading the bytes.
    A size that differs from ``expected_size`` is returned without reading them."""
    from botocore.exceptions import ClientError

    try:
        head = storage.s3().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        # HeadObject answers without a body, so botocore's code for a missing key is the status
        if exc.response["Error"]["Code"] == "404":
            return None
        raise
    size = int(head["ContentLength"])
    if expected_size is not None and size != expected_size:
        return ObjectDigest(size, "", "not read (size differs)")
    if full_object_sha256(head) == expected_sha256:
        return ObjectDigest(size, expected_sha256, "s3-checksum")
    return ObjectDigest(size, stream_sha256(bucket, key), "streamed")


VERIFIED_PREFIX = "verified/"


def verified_key(month: str, execution: str) -> str:
    """``verified/<month>/<execution>.json``: the digests ingest verified for that execution
    (its name is the month and the manifest's hash, so a key holds one content, written once)."""
    return f"{VERIFIED_PREFIX}{month}/{execution}.json"


def verified_document(verified: dict[str, str]) -> bytes:
    """The object at ``verified_key``: the digests (name → SHA-256 hex) as JSON, by name."""
    return json.dumps(dict(sorted(verified.items()))).encode()


def put_verified(bucket: str, month: str, execution: str, verified: dict[str, str]) -> str:
    """Ingest keeps the verified digests (name → SHA-256 hex) in S3, not in the execution's
    input: that input, and so every state, would grow ≈ 100 bytes a file (600 parts: 60 KB)."""
    key = verified_key(month, execution)
    storage.put_bytes(bucket, key, verified_document(verified), content_type="application/json")
    return key


def read_verified(bucket: str, event: dict[str, Any]) -> dict[str, str] | None:
    """The digests ingest verified for this execution: its ``files_key`` read from S3 (a key
    that is gone raises: the checks are never skipped silently), or an inline ``files`` (an
    execution started before the key), or None when the event has neither."""
    key = event.get("files_key")
    if key:
        return json.loads(storage.get_bytes(bucket, key))
    return event.get("files")


def changed_since_ingest(files: dict[str, bytes], verified: dict[str, str] | None) -> list[Violation]:
    """Files that differ from the SHA-256 ingest verified (``verified``: name → hex digest,
    ``read_verified``): a file replaced between ingest and the step that reads it."""
    if not verified:
        return []
    violations = [changed_file(name, digest) for name, digest in sorted(verified.items())
                  if name not in files or hashlib.sha256(files[name]).hexdigest() != digest]
    violations += [unverified_file(name) for name in sorted(set(files) - set(verified))]
    return violations


def added_or_gone(names: set[str], verified: dict[str, str] | None) -> list[Violation]:
    """``changed_since_ingest``'s rules that need no byte of the month (a sharded month's
    ShardMonth: each SplitParts child checks its own file's digest with ``changed_file``)."""
    if not verified:
        return []
    return ([unverified_file(name) for name in sorted(names - set(verified))]
            + [changed_file(name, digest) for name, digest in sorted(verified.items()) if name not in names])


def changed_file(name: str, digest: str) -> Violation:
    """A file gone or different from the SHA-256 ingest verified."""
    return Violation(name, "", "changed after ingest verified it", f"expected sha256 {digest}")


def unverified_file(name: str) -> Violation:
    return Violation(name, "", "appeared after ingest verified the month")
