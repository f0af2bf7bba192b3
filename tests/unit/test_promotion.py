"""Pure loop decisions: promote, retrain, roll back."""

import math

import pytest

from streamflow.promotion import NothingToRollBack, rollback_target, should_promote, should_retrain


def test_first_model_is_promoted_when_there_is_no_champion():
    assert should_promote(0.55, None, 0.01) is True


@pytest.mark.parametrize(
    ("new_auc", "prod_auc", "delta", "expected"),
    [
        (0.81, 0.80, 0.01, True),  # exactly delta: float noise must not turn this into a loss
        (0.71, 0.70, 0.01, True),
        (0.3, 0.29, 0.01, True),
        (0.8099, 0.80, 0.01, False),  # just under delta
        (0.85, 0.80, 0.01, True),
        (0.80, 0.80, 0.01, False),  # a tie is no win
        (0.79, 0.80, 0.01, False),  # worse
        (0.80, 0.80, 0.0, True),  # zero delta: a tie is enough
        (0.84, 0.80, 0.05, False),
        (0.85, 0.80, 0.05, True),
    ],
)
def test_challenger_needs_to_win_by_at_least_delta(new_auc, prod_auc, delta, expected):
    assert should_promote(new_auc, prod_auc, delta) is expected


@pytest.mark.parametrize("bad", [math.nan, -0.01, 1.01, float("inf"), None, "0.9", True])
def test_broken_challenger_auc_is_refused(bad):
    with pytest.raises(ValueError):
        should_promote(bad, 0.7, 0.01)


@pytest.mark.parametrize("bad", [math.nan, -0.5, 1.5])
def test_broken_champion_auc_is_refused(bad):
    with pytest.raises(ValueError):
        should_promote(0.9, bad, 0.01)


def test_nan_challenger_is_refused_even_without_a_champion():
    with pytest.raises(ValueError):
        should_promote(math.nan, None, 0.01)


@pytest.mark.parametrize("delta", [-0.01, math.nan])
def test_invalid_delta_is_refused(delta):
    with pytest.raises(ValueError):
        should_promote(0.9, 0.7, delta)


def test_bounds_of_auc_are_accepted():
    assert should_promote(1.0, 0.0, 0.01) is True
    assert should_promote(0.0, 1.0, 0.01) is False


@pytest.mark.parametrize(
    ("share", "threshold", "has_champion", "expected"),
    [
        (0.0, 0.02, False, True),  # nothing serves yet: always train
        (0.01, 0.02, True, False),
        (0.02, 0.02, True, True),  # at the threshold counts
        (0.5, 0.02, True, True),
    ],
)
def test_should_retrain(share, threshold, has_champion, expected):
    assert should_retrain(share, threshold, has_champion) is expected


def test_nan_drift_share_is_refused():
    with pytest.raises(ValueError):
        should_retrain(math.nan, 0.02, True)


def test_rollback_goes_to_previous():
    assert rollback_target("5", "4") == "4"


@pytest.mark.parametrize(("production", "previous"), [("5", None), (None, None), ("5", "5")])
def test_rollback_without_a_distinct_previous_is_refused(production, previous):
    with pytest.raises(NothingToRollBack):
        rollback_target(production, previous)
