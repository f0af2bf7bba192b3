"""How many BatchWriteItem calls PublishOnlineFeatures keeps in flight: several against
DynamoDB, one against an endpoint on this machine (whose emulator answers on the same cores
as the work running beside the write). Real endpoint: the emulator's moto server."""

from __future__ import annotations

import threading

import boto3
import pytest

from aws_endpoint import create_table, moto_endpoint_in_env
from streamflow import online_store
from test_scorer import _frame


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4566", "http://localhost:5000", "http://[::1]:8000",
                                      "http://127.0.0.2:4566"])
def test_an_endpoint_on_this_machine_gets_one_write_in_flight(endpoint):
    assert online_store.write_threads(endpoint) == online_store.LOCAL_WRITE_THREADS == 1


@pytest.mark.parametrize("endpoint", [None, "", "https://dynamodb.eu-west-1.amazonaws.com",
                                      "http://10.0.0.5:4566", "http://localstack:4566"])
def test_dynamodb_elsewhere_gets_several(endpoint):
    assert online_store.write_threads(endpoint) == online_store.WRITE_THREADS > 1


def test_the_emulator_is_written_one_call_at_a_time_and_every_item_arrives():
    frame = _frame()
    users = len(frame[~frame.index.duplicated(keep="last")])
    assert users > 4 * online_store.BATCH_WRITE_ITEMS  # enough batches for several threads to overlap
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def started(**_):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])

    def ended(**_):
        with lock:
            in_flight[0] -= 1

    with moto_endpoint_in_env() as url:
        create_table(url, "unit-write-threads", "user_id")
        client = online_store._client()
        client.meta.events.register("before-call.dynamodb.BatchWriteItem", started)
        client.meta.events.register("after-call.dynamodb.BatchWriteItem", ended)
        try:
            assert online_store.write_online_features("unit-write-threads", "month_001", frame) == users
        finally:
            client.meta.events.unregister("before-call.dynamodb.BatchWriteItem", started)
            client.meta.events.unregister("after-call.dynamodb.BatchWriteItem", ended)
        count = boto3.client("dynamodb").describe_table(TableName="unit-write-threads")["Table"]["ItemCount"]
    assert most[0] == 1
    assert count == users
