"""Ingest: one execution name per month content, and which S3 keys start a month."""

from __future__ import annotations

import json
import re

import pytest

from streamflow.ingest import MonthUpload, execution_name, month_from_key

SFN_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
BODY = json.dumps({"month": "month_001", "files": {"users.csv": {"bytes": 10, "sha256": "ab"}}}).encode()


def test_execution_name_is_the_month_and_the_manifest_digest():
    """Known answer: ``hashlib.sha256(BODY).hexdigest()`` starts 0b7a4992326933db, so the
    name is fixed by the manifest's bytes (the same content → the same execution, in any
    process) and can never change silently."""
    assert execution_name("month_001", BODY) == "month_001-0b7a4992326933db"
    assert execution_name("month_001", b'{"month": "month_001"}') == "month_001-86fe31903ec91ca1"


def test_execution_name_differs_with_content_and_month():
    other = BODY.replace(b'"bytes": 10', b'"bytes": 11')
    names = {execution_name("month_001", BODY), execution_name("month_001", other), execution_name("month_002", BODY)}
    assert len(names) == 3


@pytest.mark.parametrize("body", [b"", BODY, b"\xff" * 10_000])
def test_execution_name_is_a_valid_step_functions_name(body):
    name = execution_name("month_123", body)
    assert SFN_NAME.match(name), name
    assert name.startswith("month_123")


def test_month_from_key_parses_a_manifest_key():
    upload = month_from_key("bucket-1", "months/month_001/_MANIFEST.json")
    assert upload == MonthUpload(bucket="bucket-1", month="month_001", manifest_key="months/month_001/_MANIFEST.json")


@pytest.mark.parametrize(
    "key",
    [
        "months/month_001/users.csv",
        "months/_MANIFEST.json",
        "month_001/_MANIFEST.json",
        "features/month_001/_MANIFEST.json",
        "months/month_001/nested/_MANIFEST.json",
        "months/month_001/_manifest.json",
        "/months/month_001/_MANIFEST.json",
        "",
    ],
)
def test_month_from_key_ignores_other_keys(key):
    assert month_from_key("bucket-1", key) is None


