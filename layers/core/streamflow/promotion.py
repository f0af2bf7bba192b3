"""Pure decisions of the loop: retrain? promote? No I/O here."""

from __future__ import annotations

import math


def _check_auc(name: str, value: float) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value!r}")


def should_promote(new_auc: float, prod_auc: float | None, delta: float) -> bool:
    """Promote when there is no champion yet, or the challenger wins by at least ``delta``.

    A NaN or out-of-range AUC is refused (ValueError): a broken evaluation must never move
    Production.
    """
    _check_auc("new_auc", new_auc)
    if delta is None or math.isnan(delta) or delta < 0:
        raise ValueError(f"delta must be a non-negative number, got {delta!r}")
    if prod_auc is None:
        return True
    _check_auc("prod_auc", prod_auc)
    # Round away float noise so "exactly delta" (0.81 vs 0.80) counts as winning.
    return round(new_auc - prod_auc, 12) >= round(delta, 12)


def should_retrain(drift_share: float, threshold: float, has_champion: bool) -> bool:
    """Retrain on drift at or above the threshold, or when nothing serves yet."""
    if math.isnan(drift_share):
        raise ValueError("drift_share is NaN")
    return (not has_champion) or drift_share >= threshold


class NothingToRollBack(RuntimeError):
    """There is no earlier champion to return to."""


def rollback_target(production: str | None, previous: str | None) -> str:
    """The version ``Production`` goes back to: the one under ``Previous``.

    Refused when there is no ``Previous``, or it is the version already serving.
    """
    if previous is None:
        raise NothingToRollBack("nothing to roll back to: no version has alias Previous")
    if previous == production:
        raise NothingToRollBack(f"nothing to roll back to: Previous is version {previous}, already Production")
    return previous


PROMOTE = "promote"
KEEP_CHAMPION = "keep_champion"
STALE_MONTH = "stale_month"


def is_stale_month(month: str, champion_month: str | None) -> bool:
    """A month older than the one the champion was trained on (a backfill)."""
    from .schema import month_index

    return champion_month is not None and month_index(month) < month_index(champion_month)


def promotion_decision(new_auc: float, prod_auc: float | None, delta: float, month: str,
                       champion_month: str | None, allow_backfill: bool = False) -> str:
    """``promote``, ``keep_champion`` or ``stale_month``: the past never replaces a champion
    trained on a newer month unless the operator allows it (``AllowBackfillPromotion``).

    The AUCs are checked (and NaN refused) whatever the month."""
    promote = should_promote(new_auc, prod_auc, delta)
    if is_stale_month(month, champion_month) and not allow_backfill:
        return STALE_MONTH
    return PROMOTE if promote else KEEP_CHAMPION
