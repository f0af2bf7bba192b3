"""The pure rules of time: the drift reference, which months a month waits for, publishing,
and backfills that cannot crown the past."""

from __future__ import annotations

import math

import pytest

from streamflow.ordering import InFlight, blocking, check_reference_mode, resolve_reference, should_publish
from streamflow.promotion import is_stale_month, promotion_decision


@pytest.mark.parametrize(
    ("mode", "month", "champion_month", "expected"),
    [
        ("champion", "month_001", "month_000", "month_000"),  # the seed's case
        ("champion", "month_003", "month_002", "month_002"),
        ("champion", "month_000", None, None),  # no champion yet: nothing to measure against
        ("champion", "month_001", "month_003", "month_003"),  # a backfill: still what the champion knows
        ("previous", "month_003", "month_001", "month_002"),
        ("previous", "month_000", None, None),  # no month before the first
        ("previous", "month_010", None, "month_009"),
        ("month_001", "month_003", "month_002", "month_001"),  # fixed: today's behaviour
        ("month_000", "month_000", None, "month_000"),
    ],
)
def test_resolve_reference_picks_the_month_its_mode_says(mode, month, champion_month, expected):
    assert resolve_reference(mode, month, champion_month) == expected


@pytest.mark.parametrize("mode", ["", "Champion", "month_1", "month_0001", "latest", None])
def test_an_unknown_reference_mode_is_refused_by_name(mode):
    with pytest.raises(ValueError, match="ReferenceMonth must be 'champion', 'previous' or month_NNN"):
        check_reference_mode(mode)


def test_a_month_waits_for_every_earlier_month_in_flight_in_month_order():
    in_flight = [InFlight("m3", "month_003"), InFlight("m1", "month_001"), InFlight("m2", "month_002"),
                 InFlight("m5", "month_005")]
    assert [b.month for b in blocking("month_003", "m3", in_flight)] == ["month_001", "month_002"]
    assert blocking("month_001", "m1", in_flight) == []
    assert [b.execution for b in blocking("month_004", "m4", in_flight)] == ["m1", "m2", "m3"]


def test_the_same_month_again_and_the_month_itself_do_not_block():
    in_flight = [InFlight("a", "month_002"), InFlight("b", "month_002")]
    assert blocking("month_002", "a", in_flight) == []
    assert blocking("month_002", "b", in_flight) == []


@pytest.mark.parametrize(
    ("month", "newest", "expected"),
    [("month_000", None, True), ("month_002", "month_001", True), ("month_002", "month_002", True),
     ("month_001", "month_003", False)],
)
def test_features_are_published_unless_a_newer_month_is_online(month, newest, expected):
    assert should_publish(month, newest) is expected


@pytest.mark.parametrize(
    ("month", "champion_month", "stale"),
    [("month_001", "month_002", True), ("month_002", "month_002", False), ("month_003", "month_002", False),
     ("month_000", None, False)],
)
def test_a_month_older_than_the_champions_is_stale(month, champion_month, stale):
    assert is_stale_month(month, champion_month) is stale


def test_a_winning_backfill_is_not_promoted_unless_allowed():
    assert promotion_decision(0.90, 0.70, 0.01, "month_001", "month_002") == "stale_month"
    assert promotion_decision(0.90, 0.70, 0.01, "month_001", "month_002", allow_backfill=True) == "promote"
    assert promotion_decision(0.70, 0.90, 0.01, "month_001", "month_002", allow_backfill=True) == "keep_champion"
    # a losing backfill is stale too: it could never have been promoted
    assert promotion_decision(0.70, 0.90, 0.01, "month_001", "month_002") == "stale_month"


def test_a_current_month_is_decided_by_should_promote():
    assert promotion_decision(0.81, 0.80, 0.01, "month_003", "month_002") == "promote"
    assert promotion_decision(0.805, 0.80, 0.01, "month_003", "month_002") == "keep_champion"
    assert promotion_decision(0.60, None, 0.01, "month_000", None) == "promote"


def test_a_broken_auc_is_refused_even_for_a_stale_month():
    with pytest.raises(ValueError):
        promotion_decision(math.nan, 0.8, 0.01, "month_001", "month_002")
