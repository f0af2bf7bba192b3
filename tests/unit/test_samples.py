"""The bounded samples drift and training read: the same users however the month is split
(shards merge exactly), the month itself when it is small, the class balance kept exactly,
and never a holdout user in training; and the shard-by-shard AUC is sklearn's on the whole
holdout, ties included."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from streamflow.auc_merge import ScorePairs
from streamflow.features import build_features
from streamflow.samples import (
    allocate,
    bottom_k,
    drift_sample,
    label_counts,
    merge_bottom_k,
    stratified,
    train_candidates,
    training_sample,
    training_users,
)
from streamflow.schema import TARGET
from streamflow.sharding import shard_of, user_hash
from streamflow.split import is_validation_user


@pytest.fixture(scope="module")
def features(month0_tables) -> pd.DataFrame:
    return build_features(month0_tables)  # 500 users


def _shards(frame: pd.DataFrame, shards: int) -> list[pd.DataFrame]:
    number = np.array([shard_of(u, shards) for u in frame.index])
    return [frame[number == n] for n in range(shards)]


def test_bottom_k_is_the_smallest_hashes_in_order(features):
    sample = bottom_k(features, 40)
    hashes = [user_hash(u) for u in sample.index]
    assert len(sample) == 40 and hashes == sorted(hashes)
    assert max(hashes) < min(user_hash(u) for u in features.index.difference(sample.index))
    pd.testing.assert_frame_equal(sample, features.loc[sample.index])  # whole rows, untouched


@pytest.mark.parametrize("shards", [1, 3, 7])
def test_shards_bottom_k_merge_to_the_whole_months_bottom_k(features, shards):
    parts = [bottom_k(part, 60) for part in _shards(features, shards)]
    pd.testing.assert_frame_equal(merge_bottom_k(parts, 60), bottom_k(features, 60))


def test_a_month_at_or_under_the_sample_size_is_measured_whole(features):
    assert drift_sample(features, len(features)) is features  # same rows, same order: the 10k path
    assert drift_sample(features, 10_000) is features
    assert len(drift_sample(features, 499)) == 499


def test_the_merged_sample_of_a_small_sharded_month_is_every_user(features):
    merged = merge_bottom_k([bottom_k(p, 10_000) for p in _shards(features, 4)], 10_000)
    pd.testing.assert_frame_equal(merged.sort_index(), features.sort_index())


def test_allocation_is_proportional_and_exact():
    assert allocate({"0": 800, "1": 200}, 100) == {"0": 80, "1": 20}
    assert allocate({"0": 7, "1": 3}, 100) == {"0": 7, "1": 3}  # under k: all of them
    assert allocate({"0": 2, "1": 1}, 2) == {"0": 1, "1": 1}  # 1.33 / 0.67: largest remainder
    assert allocate({"0": 999, "1": 1}, 10) == {"0": 9, "1": 1}  # a rare class keeps one
    assert allocate({"0": 5, "1": 0}, 3) == {"0": 3, "1": 0}
    for n0, n1, k in [(123, 45, 17), (1000, 1, 999), (50, 50, 99), (3, 9_997, 10)]:
        share = allocate({"0": n0, "1": n1}, k)
        assert sum(share.values()) == k and share["0"] <= n0 and share["1"] <= n1
        assert abs(share["1"] - k * n1 / (n0 + n1)) <= 1


def test_training_sample_keeps_the_class_balance_and_never_a_holdout_user(features):
    training = training_users(features)
    assert not any(is_validation_user(u) for u in training.index)
    assert len(training) == sum(not is_validation_user(u) for u in features.index)
    sample = training_sample(training, 100)
    counts = label_counts(training)
    assert len(sample) == 100 and sample.index.is_unique and set(sample.index) <= set(training.index)
    assert label_counts(sample) == allocate(counts, 100)
    assert training_sample(training, len(training)) is training  # small month: all of it, as before


@pytest.mark.parametrize("shards", [2, 5])
def test_the_training_sample_merged_from_shards_is_the_whole_months(features, shards):
    parts = [training_users(part) for part in _shards(features, shards)]
    merged = stratified([train_candidates(p, 100) for p in parts], [label_counts(p) for p in parts], 100)
    pd.testing.assert_frame_equal(merged, training_sample(training_users(features), 100))


def test_a_sample_size_below_zero_is_refused(features):
    with pytest.raises(ValueError, match=">= 0"):
        bottom_k(features, -1)
    with pytest.raises(ValueError, match="no sample"):
        merge_bottom_k([], 5)


@pytest.mark.parametrize("decimals", [None, 1])  # 1 decimal: hundreds of tied scores
@pytest.mark.parametrize("shards", [1, 4])
def test_the_auc_merged_from_shards_is_sklearns_on_the_whole_holdout(features, decimals, shards):
    rng = np.random.default_rng(3)
    scores = pd.Series(rng.random(len(features)) * 0.5 + features[TARGET].astype(float) * 0.3, index=features.index)
    if decimals is not None:
        scores = scores.round(decimals)
    pairs = ScorePairs()
    for part in _shards(features, shards):
        pairs.add(scores.loc[part.index].to_numpy(), part[TARGET].astype(int).to_numpy())
    assert len(pairs) == len(features)
    whole = roc_auc_score(features[TARGET].astype(int), scores)
    assert pairs.auc() == whole  # exact, not approximately
    assert 0.5 < whole < 1


def test_an_auc_of_one_class_is_nan_and_pairs_must_match():
    pairs = ScorePairs()
    pairs.add(np.array([0.1, 0.7]), np.array([1, 1]))
    assert math.isnan(pairs.auc()) and math.isnan(ScorePairs().auc())
    with pytest.raises(ValueError, match="2 scores for 1 labels"):
        pairs.add(np.array([0.1, 0.2]), np.array([1]))
