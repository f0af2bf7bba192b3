"""What the loop's decisions say when they refuse (the exact texts a person reads in a
failed execution or from `streamflow rollback`), and where float noise ends."""

from __future__ import annotations

import math

import pytest

from streamflow.promotion import NothingToRollBack, rollback_target, should_promote, should_retrain


def _message(exc_type, call, *args) -> str:
    with pytest.raises(exc_type) as raised:
        call(*args)
    return str(raised.value)


def test_a_nan_drift_share_is_named():
    assert _message(ValueError, should_retrain, math.nan, 0.02, True) == "drift_share is NaN"


def test_rollback_refusals_say_why():
    assert _message(NothingToRollBack, rollback_target, "5", None) == (
        "nothing to roll back to: no version has alias Previous")
    assert _message(NothingToRollBack, rollback_target, "5", "5") == (
        "nothing to roll back to: Previous is version 5, already Production")
    assert rollback_target(None, "4") == "4"  # nothing serves: Previous is still a target


@pytest.mark.parametrize(("args", "text"), [
    ((math.nan, 0.7, 0.01), "new_auc must be within [0, 1], got nan"),
    ((1.5, 0.7, 0.01), "new_auc must be within [0, 1], got 1.5"),
    ((None, 0.7, 0.01), "new_auc must be a number, got None"),
    (("0.9", 0.7, 0.01), "new_auc must be a number, got '0.9'"),
    ((True, 0.7, 0.01), "new_auc must be a number, got True"),
    ((0.9, -0.5, 0.01), "prod_auc must be within [0, 1], got -0.5"),
    ((0.9, "x", 0.01), "prod_auc must be a number, got 'x'"),
    ((0.9, 0.7, -0.01), "delta must be a non-negative number, got -0.01"),
    ((0.9, 0.7, math.nan), "delta must be a non-negative number, got nan"),
    ((0.9, 0.7, None), "delta must be a non-negative number, got None"),
])
def test_broken_inputs_to_the_promotion_rule_are_named(args, text):
    assert _message(ValueError, should_promote, *args) == text


def test_float_noise_below_1e_12_neither_wins_nor_loses():
    """AUC differences are compared at 12 decimals: a shortfall (or an excess of delta)
    under 1e-12 is float noise, not a verdict; one above it counts."""
    assert should_promote(0.8099999999996, 0.80, 0.01) is True  # 4e-13 short of delta: noise
    assert should_promote(0.81, 0.80, 0.0100000000004) is True  # delta 4e-13 above the gain: noise
    assert should_promote(0.809999999996, 0.80, 0.01) is False  # 4e-12 short: a real shortfall
