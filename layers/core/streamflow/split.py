"""The validation split: a stable hash of user_id, the same users held out every month.

A champion trained on earlier months never saw these users, so champion and challenger
are judged on the same, unseen rows (the seed's comparison leaked training rows).
"""

from __future__ import annotations

import hashlib

import pandas as pd

VALIDATION_PERCENT = 20


def is_validation_user(user_id: str, percent: int = VALIDATION_PERCENT) -> bool:
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def split_by_user(frame: pd.DataFrame, percent: int = VALIDATION_PERCENT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) of a frame indexed by user_id."""
    mask = pd.Series([is_validation_user(u, percent) for u in frame.index], index=frame.index)
    return frame[~mask], frame[mask]
