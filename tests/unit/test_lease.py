"""The promotion lease against a real DynamoDB endpoint (the emulator's moto server):
an expired lease is taken over, a held one makes the caller wait and then give up with
LeaseBusy, and only its owner releases it."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from aws_endpoint import create_table, endpoint_env, moto_endpoint
import json
from pathlib import Path

from streamflow.lease import DEFAULT_TTL_SECONDS, PROMOTE_TIMEOUT_SECONDS, PROMOTION_LEASE, LeaseBusy, hold
from streamflow_local.template import Stack, load_template

TABLE = "unit-leases"


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint() as url:
        create_table(url, TABLE, "lease_id")
        yield url


@pytest.fixture
def table(endpoint, monkeypatch):
    for key, value in endpoint_env(endpoint).items():
        monkeypatch.setenv(key, value)
    leases = boto3.resource("dynamodb").Table(TABLE)
    for item in leases.scan()["Items"]:
        leases.delete_item(Key={"lease_id": item["lease_id"]})
    return leases


def _item(table, name: str = PROMOTION_LEASE) -> dict | None:
    return table.get_item(Key={"lease_id": name}, ConsistentRead=True).get("Item")


def _held_by(table, owner: str, expires_in: int, name: str = PROMOTION_LEASE) -> None:
    table.put_item(Item={"lease_id": name, "owner": owner, "expires_at": int(time.time()) + expires_in})


def test_a_free_lease_is_held_for_the_block_and_released_after(table):
    before = int(time.time())
    with hold(TABLE, owner="month_001", ttl_seconds=300) as owner:
        after = int(time.time())
        item = _item(table)
        assert owner == "month_001"
        assert item["lease_id"] == "promotion" and item["owner"] == "month_001"
        assert before + 300 <= item["expires_at"] <= after + 300
    assert _item(table) is None


def test_defaults_a_fresh_owner_the_promotion_lease_and_a_ttl_beyond_promotes_timeout(table):
    before = int(time.time())
    with hold(TABLE) as first:
        after = int(time.time())
        item = _item(table, "promotion")
        assert item["owner"] == first and len(first) == 32 and int(first, 16) >= 0
        assert before + DEFAULT_TTL_SECONDS <= item["expires_at"] <= after + DEFAULT_TTL_SECONDS
    with hold(TABLE) as second:
        assert second != first
    assert _item(table, "promotion") is None


def test_an_expired_lease_of_a_crashed_holder_is_taken_over(table):
    _held_by(table, "crashed", expires_in=-10)
    with hold(TABLE, owner="month_002", wait_seconds=0) as owner:
        assert owner == "month_002"
        assert _item(table)["owner"] == "month_002"
    assert _item(table) is None


def test_a_held_lease_makes_the_caller_give_up_with_lease_busy(table):
    _held_by(table, "month_001", expires_in=300)
    entered = []
    with pytest.raises(LeaseBusy, match="'promotion' is held by another run; gave up after 1 s"):
        with hold(TABLE, owner="month_002", wait_seconds=0.6):
            entered.append(True)
    assert entered == []
    assert _item(table)["owner"] == "month_001"  # untouched


def test_a_lease_released_while_waiting_is_then_taken(table):
    """The caller waits (polls) instead of giving up at once."""
    _held_by(table, "month_001", expires_in=300)
    release = threading.Timer(0.6, lambda: table.delete_item(Key={"lease_id": PROMOTION_LEASE}))
    release.start()
    try:
        with hold(TABLE, owner="month_002", wait_seconds=30):
            assert _item(table)["owner"] == "month_002"
    finally:
        release.cancel()
    assert _item(table) is None


def test_leases_of_different_names_do_not_block_each_other(table):
    _held_by(table, "someone", expires_in=300, name="other")
    with hold(TABLE, owner="me", wait_seconds=0):
        assert _item(table)["owner"] == "me"
    assert _item(table, "other")["owner"] == "someone"


def test_only_the_owner_releases_the_lease(table):
    """A holder whose lease expired and was taken over must not delete the new holder's."""
    with hold(TABLE, owner="slow", wait_seconds=0):
        _held_by(table, "month_009", expires_in=300)  # "slow" expired; month_009 took over
    assert _item(table)["owner"] == "month_009"


def test_the_lease_is_released_when_the_block_raises(table):
    with pytest.raises(RuntimeError, match="promote failed"):
        with hold(TABLE, owner="month_003"):
            raise RuntimeError("promote failed")
    assert _item(table) is None


def test_other_dynamodb_errors_are_raised_not_waited_on(table):
    with pytest.raises(ClientError) as raised:
        with hold("no-such-table", wait_seconds=5):
            pass
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_the_ttl_outlives_promote_as_the_template_deploys_it():
    """A lease must not expire under a Promote still running: TTL > function and Task timeouts."""
    root = Path(__file__).resolve().parents[2]
    stack = Stack(load_template(root / "template.yaml"), name="s", region="us-east-1")
    function_timeout = int(stack.function_properties("PromoteFunction")["Timeout"])
    task_timeout = json.loads((root / "infra/statemachine/pipeline.asl.json").read_text())["States"]["Promote"][
        "TimeoutSeconds"]
    assert function_timeout == PROMOTE_TIMEOUT_SECONDS
    assert DEFAULT_TTL_SECONDS >= max(function_timeout, task_timeout) + 30


def test_the_holder_re_enters_its_own_lease_at_once(table):
    """A retried Promote (same execution, same owner) after its Lambda died holding the lease."""
    _held_by(table, "month_004", expires_in=200)
    before = int(time.time())
    with hold(TABLE, owner="month_004", ttl_seconds=300, wait_seconds=0):
        assert _item(table)["owner"] == "month_004"
        assert _item(table)["expires_at"] >= before + 300  # refreshed, not the crashed holder's expiry
    assert _item(table) is None


def test_another_owner_still_waits_for_a_held_lease(table):
    _held_by(table, "month_004", expires_in=200)
    with pytest.raises(LeaseBusy):
        with hold(TABLE, owner="month_005", wait_seconds=0):
            pass
    assert _item(table)["owner"] == "month_004"


def test_a_nested_hold_by_the_same_owner_neither_rewrites_nor_releases(table):
    with hold(TABLE, owner="rollback-x", ttl_seconds=300):
        first = _item(table)
        with hold(TABLE, owner="rollback-x", ttl_seconds=999, wait_seconds=0):
            assert _item(table) == first
        assert _item(table) == first  # still held by the outer block
    assert _item(table) is None


def test_holds_nested_twice_keep_the_lease_until_the_outermost_ends(table):
    """Each nested block ends before the outer one: the lease is neither rewritten nor released
    until the outermost block ends, however many nested blocks came and went."""
    with hold(TABLE, owner="rollback-y", ttl_seconds=300):
        first = _item(table)
        for _ in range(2):
            with hold(TABLE, owner="rollback-y", ttl_seconds=999, wait_seconds=0):
                assert _item(table) == first
            assert _item(table) == first
    assert _item(table) is None
    with hold(TABLE, owner="rollback-y", ttl_seconds=300, wait_seconds=0):  # held afresh afterwards
        assert _item(table)["owner"] == "rollback-y"


def test_another_owner_inside_a_held_block_waits_like_anyone_else(table):
    with hold(TABLE, owner="month_006"):
        with pytest.raises(LeaseBusy):
            with hold(TABLE, owner="month_007", wait_seconds=0):
                pass
        assert _item(table)["owner"] == "month_006"
    assert _item(table) is None
