"""Validate hands the tables it checked to BuildFeatures (``checked_tables``), against the
emulator's S3: the features are the ones built from the checked CSVs; a file replaced after
Validate does not reach them; the handed tables are gone once the features are written; and
without them (another execution, a step called without one) BuildFeatures checks the files
again, a broken file then still stopping it."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from aws_endpoint import s3_bucket_in_env
from csv_edit import with_cell
from streamflow import checked_tables, steps, storage
from streamflow.features import build_features
from streamflow.schema import MONTH_FILES
from streamflow.settings import Settings
from streamflow.violations import ContractError

BUCKET = "checked-tables"


@pytest.fixture(scope="module")
def s3():
    with s3_bucket_in_env(BUCKET) as client:
        yield client


def _upload(s3, month: str, files: dict[str, bytes]) -> dict[str, str]:
    for name, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=storage.month_prefix(month) + name, Body=body)
    return {name: hashlib.sha256(body).hexdigest() for name, body in files.items()}


def _keys(s3, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def test_build_features_uses_the_tables_validate_checked_and_then_deletes_them(s3, month0_files, month0_tables):
    settings = Settings.from_env({"DATA_BUCKET": BUCKET})
    event = {"month": "month_001", "execution": "e-1", "files": _upload(s3, "month_001", month0_files)}
    validation = steps.validate(settings, event)
    assert validation["checked_tables"] == checked_tables.folder("month_001", "e-1")
    assert sorted(_keys(s3, validation["checked_tables"])) == sorted(
        checked_tables.table_key("month_001", "e-1", file) for file in MONTH_FILES)

    # replaced after Validate checked it: BuildFeatures must not build from this file
    s3.put_object(Bucket=BUCKET, Key=storage.month_prefix("month_001") + "subscriptions.csv",
                  Body=with_cell(month0_files["subscriptions.csv"], "monthly_fee", 0, "999.0"))
    steps.build_month_features(settings, {**event, "validation": validation})
    built = storage.read_features(BUCKET, "month_001")
    pd.testing.assert_frame_equal(built, build_features(month0_tables))
    assert _keys(s3, "checked/month_001/") == []


def test_without_this_executions_tables_build_features_checks_the_files_again(s3, month0_files, month0_tables):
    settings = Settings.from_env({"DATA_BUCKET": BUCKET})
    event = {"month": "month_002", "execution": "e-2", "files": _upload(s3, "month_002", month0_files)}
    steps.validate(settings, event)
    steps.build_month_features(settings, {"month": "month_002", "execution": "e-other"})
    pd.testing.assert_frame_equal(storage.read_features(BUCKET, "month_002"), build_features(month0_tables))
    assert len(_keys(s3, checked_tables.folder("month_002", "e-2"))) == len(MONTH_FILES)  # not another's to delete

    s3.put_object(Bucket=BUCKET, Key=storage.month_prefix("month_002") + "subscriptions.csv",
                  Body=with_cell(month0_files["subscriptions.csv"], "monthly_fee", 0, "-5"))
    with pytest.raises(ContractError, match="must not be negative"):
        steps.build_month_features(settings, {"month": "month_002"})
