"""The drift_share of a sharded month, measured on its merged bottom-k samples, against the
one-shot value on the whole months (no stack: the features are built directly; Evidently's
DataDriftPreset as DetectDrift runs it).

* 10k users, DriftSampleSize 50,000 (the default): the sample is every user, so the share is
  identical, whichever way the month was split.
* 100k users, DriftSampleSize 50,000: within the documented tolerance (README, "Sharded
  months"): at most one column's verdict differs, |Δ drift_share| <= 1 / columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamflow.drift import measure_drift
from streamflow.features import build_features
from streamflow.generator import generate_month
from streamflow.samples import DRIFT_SAMPLE_SIZE, bottom_k, merge_bottom_k
from streamflow.sharding import shard_of

pytestmark = pytest.mark.integration


def _features(month: int, users: int) -> pd.DataFrame:
    return build_features(generate_month(month, n_users=users))


def _sharded_sample(frame: pd.DataFrame, shards: int, k: int) -> pd.DataFrame:
    """What MergeShards keeps: each shard's bottom-k, merged."""
    number = np.array([shard_of(u, shards) for u in frame.index])
    return merge_bottom_k((bottom_k(frame[number == n], k) for n in range(shards)), k)


def test_a_10k_month_sample_is_the_month_and_its_drift_share_is_identical():
    reference, current = _features(0, 10_000), _features(1, 10_000)
    whole = measure_drift(reference, current)
    sampled = measure_drift(_sharded_sample(reference, 4, DRIFT_SAMPLE_SIZE),
                            _sharded_sample(current, 3, DRIFT_SAMPLE_SIZE))
    assert (sampled.drift_share, sampled.drifted_columns) == (whole.drift_share, whole.drifted_columns)
    assert whole.drift_share > 0  # month_001 drifts: the comparison is not of two zeros


def test_a_100k_month_drift_share_from_its_sample_is_within_one_column():
    reference, current = _features(0, 100_000), _features(1, 100_000)
    whole = measure_drift(reference, current)
    sampled = measure_drift(_sharded_sample(reference, 4, DRIFT_SAMPLE_SIZE),
                            _sharded_sample(current, 3, DRIFT_SAMPLE_SIZE))
    assert abs(sampled.drift_share - whole.drift_share) <= 1 / whole.columns + 1e-12
    assert abs(sampled.drifted_columns - whole.drifted_columns) <= 1
    assert whole.drift_share > 0
