"""Drift, training and Compare read a sharded month through its samples and shards (against
the emulator's S3, the steps as ValidateShards and MergeShards run them): the merged samples
are the ones the whole month gives, a one-shot month is read as before, and the holdout AUC
scored shard by shard is the one-shot AUC exactly."""

from __future__ import annotations


import pandas as pd
import pytest
from aws_endpoint import s3_bucket_in_env
from streamflow import month_reads, shard_records, shard_steps, steps, storage
from streamflow.samples import bottom_k, label_counts, training_sample, training_users
from streamflow.settings import Settings
from streamflow.split import split_by_user
from streamflow.training import evaluate_auc, train
from test_shard_steps import _as_parts, _run_sharded, _upload

BUCKET = "shard-steps"  # test_shard_steps' helpers upload there
DRIFT_K, TRAIN_K = 120, 150  # month0 has 500 users, about 400 of them outside the holdout


@pytest.fixture(scope="module")
def s3():
    with s3_bucket_in_env(BUCKET) as client:
        yield client


def _settings(drift_k: int = DRIFT_K, train_k: int = TRAIN_K) -> Settings:
    return Settings.from_env({"DATA_BUCKET": BUCKET, "USERS_PER_SHARD": "150", "DRIFT_SAMPLE_SIZE": str(drift_k),
                              "TRAIN_SAMPLE_SIZE": str(train_k)})


@pytest.fixture(scope="module")
def months(s3, month0_files):
    """month_020 one-shot, month_021 the same data uploaded in parts and sharded (4 shards)."""
    settings = _settings()
    steps.validate(settings, {"month": "month_020", "files": _upload(s3, "month_020", month0_files)})
    whole = steps.build_month_features(settings, {"month": "month_020"})
    _, results = _run_sharded(settings, "month_021", _upload(s3, "month_021", _as_parts(month0_files)))
    merged = shard_steps.merge_shards(settings, {"month": "month_021", "execution": "e1", "shards": len(results)})
    return whole, merged["features"]


def test_merge_shards_writes_the_whole_months_samples(months):
    _, sharded = months
    frame = storage.read_features(BUCKET, "month_020")
    assert sharded["shards"] == 4 and sharded["drift_sample_users"] == DRIFT_K
    assert sharded["train_counts"] == label_counts(training_users(frame))
    pd.testing.assert_frame_equal(storage.read_frame(BUCKET, sharded["drift_sample_key"]), bottom_k(frame, DRIFT_K))
    pd.testing.assert_frame_equal(storage.read_frame(BUCKET, sharded["train_sample_key"]),
                                  training_sample(training_users(frame), TRAIN_K))


def test_drift_reads_the_sample_of_a_sharded_month_and_a_one_shot_month_whole(months):
    whole, sharded = months
    frame = storage.read_features(BUCKET, "month_020")
    one_shot = month_reads.drift_frame(BUCKET, "month_020", 10_000, whole)
    pd.testing.assert_frame_equal(one_shot, frame)  # at or under k: the month itself, in its order
    pd.testing.assert_frame_equal(month_reads.drift_frame(BUCKET, "month_020", DRIFT_K, whole),
                                  bottom_k(frame, DRIFT_K))  # over k, one-shot: sampled in memory
    for features in (sharded, None):  # its own month, or as the reference month
        pd.testing.assert_frame_equal(month_reads.drift_frame(BUCKET, "month_021", DRIFT_K, features),
                                      bottom_k(frame, DRIFT_K))
    # a sample smaller than asked for (written under a smaller DriftSampleSize): the shards decide
    # (a sharded month has no whole-month features file), merged a shard at a time
    assert storage.object_size(BUCKET, storage.features_key("month_021")) is None
    pd.testing.assert_frame_equal(month_reads.drift_frame(BUCKET, "month_021", 10_000, sharded),
                                  bottom_k(frame, 10_000))
    pd.testing.assert_frame_equal(month_reads.drift_frame(BUCKET, "month_021", DRIFT_K + 1, None),
                                  bottom_k(frame, DRIFT_K + 1))


def test_a_sharded_months_sample_of_every_user_is_read_as_the_month(months):
    _, sharded = months
    frame = storage.read_features(BUCKET, "month_020")
    key = month_reads.drift_sample_key("month_021")
    saved = storage.read_frame(BUCKET, key)
    storage.write_frame(BUCKET, key, bottom_k(frame, 10_000))  # as MergeShards writes it with k >= users
    shard_keys = month_reads._shard_features_keys(BUCKET, "month_021")
    shard_frames = [storage.read_frame(BUCKET, k) for k in shard_keys]
    for k in shard_keys:
        storage.delete(BUCKET, k)  # so the sample alone can answer
    try:
        pd.testing.assert_frame_equal(month_reads.drift_frame(BUCKET, "month_021", 10_000, sharded),
                                      bottom_k(frame, 10_000))
    finally:
        storage.write_frame(BUCKET, key, saved)
        for k, shard in zip(shard_keys, shard_frames):
            storage.write_frame(BUCKET, k, shard)


def test_a_sharded_month_counts_as_processed_for_a_reference_month(months):
    assert month_reads.month_processed(BUCKET, "month_020") and month_reads.month_processed(BUCKET, "month_021")
    assert not month_reads.month_processed(BUCKET, "month_099")


def test_a_one_shot_rebuild_drops_a_sample_left_by_a_sharded_run(s3, months):
    storage.write_frame(BUCKET, month_reads.drift_sample_key("month_020"), bottom_k(
        storage.read_features(BUCKET, "month_020"), DRIFT_K).head(DRIFT_K))
    steps.build_month_features(_settings(), {"month": "month_020"})
    assert storage.object_size(BUCKET, month_reads.drift_sample_key("month_020")) is None


def test_training_reads_the_stratified_sample_or_the_whole_training_users(months):
    whole, sharded = months
    frame = storage.read_features(BUCKET, "month_020")
    rows, users, holdout = month_reads.training_rows(BUCKET, "month_021", TRAIN_K, sharded)
    assert len(rows) == TRAIN_K and users == len(training_users(frame)) and holdout is None  # scored by shard
    rows, users, holdout = month_reads.training_rows(BUCKET, "month_020", 10_000, whole)
    pd.testing.assert_frame_equal(rows, training_users(frame))  # small: every non-holdout user, as before
    pd.testing.assert_frame_equal(holdout, split_by_user(frame)[1])
    rows, _, _ = month_reads.training_rows(BUCKET, "month_020", TRAIN_K, whole)
    pd.testing.assert_frame_equal(rows, training_sample(training_users(frame), TRAIN_K))


def test_the_holdout_auc_scored_shard_by_shard_is_the_one_shot_auc(months):
    whole, sharded = months
    frame = storage.read_features(BUCKET, "month_020")
    champion = train(training_users(frame).iloc[:150])
    challenger = train(training_users(frame))
    models = {"champion": champion, "challenger": challenger}
    by_shard = month_reads.holdout_aucs(BUCKET, "month_021", sharded, models)
    one_shot = month_reads.holdout_aucs(BUCKET, "month_020", whole, models)
    holdout = split_by_user(frame)[1]
    for name, model in models.items():
        assert by_shard[name] == one_shot[name] == evaluate_auc(model, holdout)  # exact


def test_the_auc_merged_from_score_shards_pairs_is_the_one_shot_auc(months):
    """ScoreShards' children write each shard's pairs; Compare merges them: exact, and only
    for the versions they were scored with."""
    from streamflow import compare_shards

    _, sharded = months
    frame = storage.read_features(BUCKET, "month_020")
    champion, challenger = train(training_users(frame).iloc[:150]), train(training_users(frame))
    models = {compare_shards.CHALLENGER: challenger, compare_shards.CHAMPION: champion}
    shards = sharded["shards"]

    def record(shard: int, champion: str | None) -> None:  # what a ScoreShards child writes
        shard_records.write(BUCKET, "month_021", shard, shard_records.SCORED, "e1",
                            {"pairs_key": compare_shards.pairs_key("month_021", shard), "challenger": "7",
                             "champion": champion})

    for shard in range(shards):
        holdout = split_by_user(storage.read_frame(BUCKET, f"shards/month_021/shard-{shard:05d}/features.parquet"))[1]
        storage.write_frame(BUCKET, compare_shards.pairs_key("month_021", shard),
                            compare_shards.shard_pairs(holdout, models))
        record(shard, "3")
    holdout = split_by_user(frame)[1]
    new_auc, prod_auc = compare_shards.merged_aucs(BUCKET, "month_021", shards, "e1", "7", "3")
    assert new_auc == evaluate_auc(challenger, holdout) and prod_auc == evaluate_auc(champion, holdout)
    assert compare_shards.merged_aucs(BUCKET, "month_021", shards, "e1", "7", "4") is None  # the champion moved
    record(1, "4")  # one shard scored by another champion: Compare scores the holdout itself
    assert compare_shards.merged_aucs(BUCKET, "month_021", shards, "e1", "7", "3") is None
    for shard in range(shards):  # no champion when they were scored
        record(shard, None)
    assert compare_shards.merged_aucs(BUCKET, "month_021", shards, "e1", "7", None) == (new_auc, None)
    storage.delete(BUCKET, shard_records.record_key("month_021", 2, shard_records.SCORED))
    with pytest.raises(shard_records.ShardRecordMissing, match="shard 2 of month_021 left no scored record"):
        compare_shards.merged_aucs(BUCKET, "month_021", shards, "e1", "7", None)  # a shard missing: an error


def test_a_shards_scoring_records_no_promotion_metric():
    from streamflow import compare_shards

    shard = compare_shards.measure_compare({"month": "month_021", "shard": 2}, {"holdout_users": 97})
    assert [(name, value) for name, _, value in shard] == [("ShardHoldoutUsersScored", 97.0)]
    whole = compare_shards.measure_compare({"month": "month_021"}, {"promote": True, "new_auc": 0.8})
    assert ("PromotionRecommended", 1.0) in [(name, value) for name, _, value in whole]
