"""``storage.is_missing``: the one test of "no such object" every reader of S3 uses, against a
real endpoint (the emulator's moto server), for both ways S3 says it."""

from __future__ import annotations

import pytest
from aws_endpoint import s3_bucket_in_env
from botocore.exceptions import ClientError
from streamflow import storage

BUCKET = "missing-objects"


@pytest.fixture(scope="module")
def s3():
    with s3_bucket_in_env(BUCKET) as client:
        yield client


def _error(call) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def test_a_missing_key_is_missing_whether_got_or_headed(s3):
    assert storage.is_missing(_error(lambda: s3.get_object(Bucket=BUCKET, Key="nope")))
    assert storage.is_missing(_error(lambda: s3.head_object(Bucket=BUCKET, Key="nope")))
    assert storage.object_size(BUCKET, "nope") is None


def test_a_missing_bucket_is_not_a_missing_object(s3):
    assert not storage.is_missing(_error(lambda: s3.get_object(Bucket="no-such-bucket-here", Key="k")))
