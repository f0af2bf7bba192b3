"""How DetectDrift, TrainChallenger and Compare read a month without holding a sharded one whole.

A one-shot month (at most ``UsersPerShard`` users) is read from its features file, as before;
when it has more users than a sample size, the sample is taken in memory (``samples``). A
sharded month (``features.shards`` > 1, set by MergeShards) is never read whole by these
steps, and has no whole-month features file (PublishShards publishes shard by shard):

* drift reads ``features/<month>/drift_sample.parquet`` (MergeShards' merge of the shards'
  bottom-k samples), and the reference month's sample by the same rule;
* training reads ``features/<month>/train_sample.parquet`` (the label-stratified sample);
* the holdout AUCs (Compare, TrainChallenger's ``val_auc``, Promote's re-decision) score each
  shard's holdout users in turn and merge the (score, label) pairs (``auc_merge``): one call,
  shard after shard, memory one shard plus the pairs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import storage
from .sharding import shard_features_key, shard_folder, shards_prefix

if TYPE_CHECKING:
    import pandas as pd


def drift_sample_key(month: str) -> str:
    return f"{storage.FEATURES_PREFIX}{month}/drift_sample.parquet"


def train_sample_key(month: str) -> str:
    return f"{storage.FEATURES_PREFIX}{month}/train_sample.parquet"


def shard_drift_sample_key(month: str, shard: int) -> str:
    return f"{shard_folder(month, shard)}drift_sample.parquet"


def shard_train_candidates_key(month: str, shard: int) -> str:
    return f"{shard_folder(month, shard)}train_candidates.parquet"


def shard_count(features: Mapping[str, Any] | None) -> int:
    """How many shards the month's features are in (1: one features file, the one-shot path)."""
    return int((features or {}).get("shards") or 1)


def drift_frame(bucket: str, month: str, k: int, features: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The rows drift measures of ``month``: its stored bottom-k sample when it has one of at
    least ``k`` rows or of every user (a sharded month), else its features, whole up to ``k``
    users and their bottom-k above (a sharded month's: merged from its shards' features). ``features`` (the step's own month: its ``shards`` and
    ``users``) says whether to look for a sample; None (a reference month) always looks."""
    from .samples import bottom_k, drift_sample, merge_bottom_k

    if features is None or shard_count(features) > 1:
        stored = storage.read_frame_if_present(bucket, drift_sample_key(month))
        every_user = features is not None and stored is not None and len(stored) >= int(features.get("users") or 0)
        if stored is not None and (len(stored) >= k or every_user):
            return bottom_k(stored, k)
        if not _has_features_file(bucket, month):  # a sharded month: its shards, one at a time
            keys = _shard_features_keys(bucket, month)
            if keys:
                return merge_bottom_k((storage.read_frame(bucket, key) for key in keys), k)
    return drift_sample(storage.read_features(bucket, month), k)


def _shard_features_keys(bucket: str, month: str) -> list[str]:
    pages = storage.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=shards_prefix(month))
    return sorted(item["Key"] for page in pages for item in page.get("Contents", [])
                  if item["Key"].endswith("/features.parquet"))


def _has_features_file(bucket: str, month: str) -> bool:
    return storage.object_size(bucket, storage.features_key(month)) is not None


def month_processed(bucket: str, month: str) -> bool:
    """The month has features to compare against: its features file (one-shot) or its merged
    drift sample (a sharded month writes no whole-month features file)."""
    return _has_features_file(bucket, month) or storage.object_size(bucket, drift_sample_key(month)) is not None


def training_rows(bucket: str, month: str, k: int,
                  features: Mapping[str, Any] | None) -> tuple[pd.DataFrame, int, pd.DataFrame | None]:
    """(what the challenger trains on, how many non-holdout users the month has, the holdout
    rows when they were read with it: a one-shot month is read once, a sharded month's
    holdout is scored shard by shard by ``holdout_aucs``)."""
    from .samples import training_sample
    from .split import split_by_user

    if shard_count(features) > 1:
        counts = (features or {}).get("train_counts") or {}
        return storage.read_frame(bucket, train_sample_key(month)), int(sum(counts.values())), None
    training, holdout = split_by_user(storage.read_features(bucket, month))
    return training_sample(training, k), len(training), holdout


def _holdouts(bucket: str, month: str, features: Mapping[str, Any] | None) -> Iterator[pd.DataFrame]:
    from .split import split_by_user

    shards = shard_count(features)
    if shards == 1:
        yield split_by_user(storage.read_features(bucket, month))[1]
        return
    for shard in range(shards):
        yield split_by_user(storage.read_frame(bucket, shard_features_key(month, shard)))[1]


def holdout_aucs(bucket: str, month: str, features: Mapping[str, Any] | None,
                 models: Mapping[str, Any]) -> dict[str, float]:
    """Each model's ROC AUC on the month's holdout users, shard by shard for a sharded month
    (exact: ``auc_merge``), from the one features file otherwise."""
    from .auc_merge import ScorePairs  # numpy: imported by the steps that score, not by ingest's reference check
    from .schema import TARGET
    from .training import churn_probability

    pairs = {name: ScorePairs() for name in models}
    for holdout in _holdouts(bucket, month, features):
        labels = holdout[TARGET].astype(int).to_numpy()
        for name, model in models.items():
            pairs[name].add(churn_probability(model, holdout) if len(holdout) else labels.astype(float), labels)
    return {name: pair.auc() for name, pair in pairs.items()}
