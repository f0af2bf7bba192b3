"""A manifest that lands before all of its files: wait while they are still arriving.

README asks for the manifest last, but ``aws s3 sync`` (and any uploader working in
parallel) sends a folder's files side by side, the manifest among them. Ingest then found
the files it lists missing, rejected the month and quarantined what had arrived so far,
and the files that arrived after it stayed in ``months/<month>/``. So before checking the
month, ingest waits while a listed file is missing and the upload is visibly going on: a
listed file arrived less than ``QUIET_SECONDS`` ago (the manifest's own arrival counts),
or a multipart upload of a missing file is in progress. A file that truly is not coming
costs ``QUIET_SECONDS``, then the month is rejected as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from . import storage
from .logs import logger

POLL_SECONDS = 0.5
QUIET_SECONDS = 3.0
MAX_WAIT_SECONDS = 30.0  # of the ingest function's 60 s: room left to hash the files and start


def keep_waiting(missing: set[str], uploading: set[str], since_last_arrival: float, waited: float,
                 quiet: float = QUIET_SECONDS, most: float = MAX_WAIT_SECONDS) -> bool:
    """Whether to wait on for the files the manifest lists: some are missing and they are
    visibly still coming (one arrived lately, or a missing one is being uploaded in parts)."""
    return bool(missing) and waited < most and (bool(missing & uploading) or since_last_arrival < quiet)


def wait_for_listed_files(bucket: str, month: str, listed: Iterable[str], quiet: float = QUIET_SECONDS,
                          most: float = MAX_WAIT_SECONDS) -> set[str]:
    """Wait (``keep_waiting``) for every file in ``listed`` to be in the month's folder; the
    ones still missing when it stops (empty when all arrived)."""
    listed = set(listed)
    clock = time.monotonic
    started = last_arrival = clock()
    present = set(storage.month_file_sizes(bucket, month)) & listed
    while True:
        missing = listed - present
        uploading = _multipart_uploads(bucket, month) if missing else set()
        now = clock()
        if not keep_waiting(missing, uploading, now - last_arrival, now - started, quiet, most):
            if missing and now > started:
                logger.info("manifest's files still missing after waiting",
                            extra={"missing": sorted(missing)[:20], "waited_seconds": round(now - started, 1)})
            return missing
        time.sleep(POLL_SECONDS)
        arrived = (set(storage.month_file_sizes(bucket, month)) & listed) - present
        if arrived:
            present |= arrived
            last_arrival = clock()


def _multipart_uploads(bucket: str, month: str) -> set[str]:
    """Names of the month's files with a multipart upload in progress (``aws s3 cp``/``sync``
    send files over 8 MB in parts: such a file shows no object until its last part is in)."""
    prefix = storage.month_prefix(month)
    names: set[str] = set()
    for page in storage.s3().get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        names.update(upload["Key"][len(prefix):] for upload in page.get("Uploads", []))
    return names
