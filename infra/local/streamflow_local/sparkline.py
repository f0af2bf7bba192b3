"""A text sparkline of AUCs for ``streamflow models``.

Scaled to at least ``MIN_SPAN`` (0.02 AUC): without a floor, 0.823468 vs 0.8235 — noise in
the fourth decimal — is drawn ▁█ like a cliff. The lowest value sits on the lowest bar.
"""

from __future__ import annotations

BARS = "▁▂▃▄▅▆▇█"
MIN_SPAN = 0.02


def spark(values: list[float], min_span: float = MIN_SPAN) -> str:
    """One bar per value; a difference smaller than ``min_span`` moves the bar less than
    the whole height."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = max(high - low, min_span)
    top = len(BARS) - 1
    return "".join(BARS[max(0, min(top, round((v - low) / span * top)))] for v in values)
