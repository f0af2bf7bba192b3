"""Bounded samples of a month that merge exactly: the same users however the month is split.

Drift and training of a month bigger than one function read a fixed-size sample instead of
the month. Both samples are chosen by ``sharding.user_hash`` (BLAKE2b of ``user_id``), never
by a random draw, so:

* **drift sample**: the ``k`` users with the smallest hash (a bottom-k sample, uniform
  without replacement). The bottom-k of a union is the bottom-k of the parts' bottom-ks, so
  each shard keeps ``k`` rows, the merge keeps ``k``, and the result is the same users the
  whole month would give; the reference month's sample follows the same rule.
* **training sample**: label-stratified over the non-holdout users (the holdout is the
  unchanged ``split`` hash). Each part keeps, per label, its bottom-k and its label counts;
  the merge gives each label ``k × its share`` of the month's non-holdout users (largest
  remainder) and takes that many from the label's bottom-k. The class balance of the sample
  is the month's, exactly, not by chance.

A sample is sorted by (hash, user_id); a frame at or under ``k`` rows is returned as it is
(the small-month path reads the same rows in the same order as before sampling existed).
Pure: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .schema import TARGET
from .sharding import user_hash
from .split import is_validation_user

DRIFT_SAMPLE_SIZE = 50_000
TRAIN_SAMPLE_SIZE = 200_000


def _hashes(frame: pd.DataFrame) -> np.ndarray:
    return np.fromiter((user_hash(str(u)) for u in frame.index), dtype=np.uint64, count=len(frame))


def bottom_k(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ``k`` rows (indexed by user_id) with the smallest user hash, in (hash, user_id) order."""
    if k < 0:
        raise ValueError("a sample size must be >= 0")
    order = np.lexsort((frame.index.astype(str).to_numpy(), _hashes(frame)))
    return frame.iloc[order[:k]]


def drift_sample(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """What drift measures of a month: the month itself up to ``k`` users, else its bottom-k."""
    return frame if len(frame) <= k else bottom_k(frame, k)


def merge_bottom_k(samples: Iterable[pd.DataFrame], k: int) -> pd.DataFrame:
    """The bottom-k of the union of parts' bottom-ks, folded one part at a time (memory: 2k rows)."""
    merged: pd.DataFrame | None = None
    for sample in samples:
        merged = sample if merged is None else bottom_k(pd.concat([merged, sample]), k)
    if merged is None:
        raise ValueError("no sample to merge")
    return bottom_k(merged, k)


def training_users(frame: pd.DataFrame) -> pd.DataFrame:
    """The non-holdout rows (``split``'s hash: the holdout never trains)."""
    mask = np.fromiter((not is_validation_user(str(u)) for u in frame.index), dtype=bool, count=len(frame))
    return frame[mask]


def label_counts(training: pd.DataFrame) -> dict[str, int]:
    """Non-holdout users per label ("0", "1": JSON keys), what the merge allocates by."""
    labels = training[TARGET].astype(int)
    return {"0": int((labels == 0).sum()), "1": int((labels == 1).sum())}


def train_candidates(training: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per label, the bottom-k of the non-holdout rows: enough for any share of ``k``."""
    labels = training[TARGET].astype(int)
    return pd.concat([bottom_k(training[labels == label], k) for label in (0, 1)])


def allocate(counts: Mapping[str, int], k: int) -> dict[str, int]:
    """How many of ``k`` each label gets: proportional to ``counts``, largest remainder, never
    more than the label has, and at least one of a label that has any (both classes train)."""
    total = sum(counts.values())
    if total <= k:
        return {label: int(n) for label, n in counts.items()}
    exact = {label: k * n / total for label, n in counts.items()}
    share = {label: min(int(counts[label]), max(1 if counts[label] else 0, int(value))) for label, value in
             exact.items()}
    by_remainder = sorted(counts, key=lambda label: (-(exact[label] - int(exact[label])), label))
    while sum(share.values()) < k:
        for label in by_remainder:
            if sum(share.values()) < k and share[label] < counts[label]:
                share[label] += 1
    while sum(share.values()) > k:  # a label raised to one may push the total over k
        label = max(share, key=lambda name: share[name])
        share[label] -= 1
    return share


def stratified(candidates: Iterable[pd.DataFrame], counts: Iterable[Mapping[str, int]], k: int) -> pd.DataFrame:
    """The month's training sample from its parts' candidates and label counts (exact merge)."""
    totals = {"0": 0, "1": 0}
    for part in counts:
        for label, n in part.items():
            totals[label] += int(n)
    share = allocate(totals, k)
    kept: dict[int, pd.DataFrame | None] = {0: None, 1: None}
    for part in candidates:
        labels = part[TARGET].astype(int)
        for label in (0, 1):
            rows = part[labels == label]
            previous = kept[label]
            kept[label] = bottom_k(rows if previous is None else pd.concat([previous, rows]), share[str(label)])
    frames = [frame for frame in kept.values() if frame is not None]
    if not frames:
        raise ValueError("no training candidates to merge")
    return bottom_k(pd.concat(frames), k)


def training_sample(training: pd.DataFrame, k: int) -> pd.DataFrame:
    """What a month trains on: all its non-holdout users up to ``k``, else the stratified sample."""
    if len(training) <= k:
        return training
    return stratified([train_candidates(training, k)], [label_counts(training)], k)
