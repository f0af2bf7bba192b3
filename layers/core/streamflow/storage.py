"""S3 layout of the loop and its read/write helpers.

boto3 reads ``AWS_ENDPOINT_URL``, so the same calls reach the local emulator, LocalStack
or AWS.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .aws_clients import per_endpoint
from .schema import MANIFEST_NAME, MONTH_FILES

if TYPE_CHECKING:  # pandas is imported where a frame is read or written: Approval and Rejection need none
    import pandas as pd

MONTHS_PREFIX = "months/"
FEATURES_PREFIX = "features/"
REPORTS_PREFIX = "reports/evidently/"
RUNS_PREFIX = "runs/"
MONTH_FILE_THREADS = len(MONTH_FILES)  # one GET or PUT per table file, side by side


def month_prefix(month: str) -> str:
    return f"{MONTHS_PREFIX}{month}/"


def manifest_key(month: str) -> str:
    return f"{month_prefix(month)}{MANIFEST_NAME}"


def features_key(month: str) -> str:
    return f"{FEATURES_PREFIX}{month}/features.parquet"


def report_key(month: str, timestamp: str) -> str:
    return f"{REPORTS_PREFIX}drift_{month}_{timestamp}.html"


@per_endpoint("AWS_ENDPOINT_URL_S3")
def s3():
    import boto3

    return boto3.client("s3")


def keys(bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix``, in S3's order (ListObjectsV2, page after page)."""
    pages = s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def get_bytes(bucket: str, key: str) -> bytes:
    return s3().get_object(Bucket=bucket, Key=key)["Body"].read()


def put_bytes(bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
    s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def put_json(bucket: str, key: str, value: Any, indent: int | None = None) -> None:
    put_bytes(bucket, key, json.dumps(value, indent=indent).encode(), content_type="application/json")


def is_missing(exc: Exception) -> bool:
    """Whether a botocore ClientError means "no such object": GetObject's NoSuchKey, or the bare
    status HeadObject gets (it has no body to carry a code; some servers say NotFound)."""
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def get_bytes_if_present(bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when there is no such object (any other error raises)."""
    from botocore.exceptions import ClientError

    try:
        return get_bytes(bucket, key)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise


def object_size(bucket: str, key: str) -> int | None:
    """Size of an object, or None when it is not there."""
    from botocore.exceptions import ClientError

    try:
        return int(s3().head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise


def read_manifest(bucket: str, month: str) -> dict[str, Any]:
    return json.loads(get_bytes(bucket, manifest_key(month)))


def month_file_sizes(bucket: str, month: str) -> dict[str, int]:
    """``{file name: bytes}`` under the month's prefix, manifest excluded; the files of a
    table folder (``users/part-00000.csv``, a partitioned table) are named with their folder."""
    prefix = month_prefix(month)
    sizes: dict[str, int] = {}
    for page in s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix):]
            if name and name != MANIFEST_NAME and name.count("/") <= 1 and not name.endswith("/"):
                sizes[name] = int(item["Size"])
    return dict(sorted(sizes.items()))


def read_month_files(bucket: str, month: str, names: Iterable[str] | None = None) -> dict[str, bytes]:
    """The month's files (``names``, or every one listed), fetched a few at a time."""
    names = list(month_file_sizes(bucket, month) if names is None else names)
    with ThreadPoolExecutor(max_workers=max(1, min(MONTH_FILE_THREADS, len(names)))) as pool:
        return dict(zip(names, pool.map(lambda name: get_bytes(bucket, month_prefix(month) + name), names)))


def write_frame(bucket: str, key: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=True)
    put_bytes(bucket, key, buffer.getvalue())


def read_frame(bucket: str, key: str) -> pd.DataFrame:
    return _frame(get_bytes(bucket, key))


def read_frame_if_present(bucket: str, key: str) -> pd.DataFrame | None:
    """The Parquet object as a frame, or None when there is no such object."""
    body = get_bytes_if_present(bucket, key)
    return None if body is None else _frame(body)


def _frame(body: bytes) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(io.BytesIO(body))


def write_features(bucket: str, month: str, frame: pd.DataFrame) -> str:
    key = features_key(month)
    write_frame(bucket, key, frame)
    return key


def read_features(bucket: str, month: str) -> pd.DataFrame:
    return read_frame(bucket, features_key(month))


APPROVALS_PREFIX = "approvals/"


def approval_key(month: str) -> str:
    """Where a pending approval (its task token) waits for `streamflow approve/reject`."""
    return f"{APPROVALS_PREFIX}{month}.json"


DECIDED_PREFIX = f"{APPROVALS_PREFIX}decided/"


def approval_decision_key(month: str) -> str:
    """Where a refused promotion (a person said no, or nobody answered in time) is recorded for
    the monitoring timeline: RecordRejection has no Evidently to write the snapshot itself."""
    return f"{DECIDED_PREFIX}{month}.json"


def delete(bucket: str, key: str) -> None:
    s3().delete_object(Bucket=bucket, Key=key)
