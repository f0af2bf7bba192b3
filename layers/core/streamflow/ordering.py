"""Pure rules of time: which month drift is measured against, which months a month waits
for, whether its features may reach the online table. No I/O here (``month_order`` does it).

Order is the number in ``month_NNN``, never the upload or start time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .schema import month_index, month_name

CHAMPION = "champion"  # the month the current Production version was trained on
PREVIOUS = "previous"  # the month before the one being processed
REFERENCE_MODES = (CHAMPION, PREVIOUS)


def check_reference_mode(mode: str) -> str:
    """``champion``, ``previous`` or a fixed ``month_NNN``; anything else is refused."""
    if mode in REFERENCE_MODES:
        return mode
    try:
        month_index(mode)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"ReferenceMonth must be 'champion', 'previous' or month_NNN, got {mode!r}") from exc
    return mode


def resolve_reference(mode: str, month: str, champion_month: str | None) -> str | None:
    """The concrete month this month's drift is measured against, or None (nothing to
    measure against: no champion yet under ``champion``, no earlier month under ``previous``).
    """
    mode = check_reference_mode(mode)
    if mode == CHAMPION:
        return champion_month
    if mode == PREVIOUS:
        number = month_index(month)
        return month_name(number - 1) if number > 0 else None
    return mode


@dataclass(frozen=True)
class InFlight:
    """A month whose execution started and has not decided yet."""

    execution: str
    month: str


def blocking(month: str, execution: str, in_flight: Iterable[InFlight]) -> list[InFlight]:
    """The earlier months in flight that must decide before ``month`` may (month order;
    other executions of the same month do not block each other)."""
    number = month_index(month)
    return sorted((entry for entry in in_flight
                   if entry.execution != execution and month_index(entry.month) < number),
                  key=lambda entry: (month_index(entry.month), entry.execution))


def should_publish(month: str, newest_published: str | None) -> bool:
    """A month's features go to the online table unless a newer month's are already there
    (each month carries every user: the newer month's row is the one the API must serve)."""
    return newest_published is None or month_index(month) >= month_index(newest_published)
