"""Compare shard by shard, for a sharded month (the ScoreShards Map, then Compare).

Each child of the Distributed Map scores the challenger and the champion on ONE shard's
holdout users and writes that shard's (score_challenger, score_champion, label) rows to
``shards/<month>/shard-NNNNN/compare_pairs.parquet`` (9 to 17 bytes a holdout user) and
the versions it used to ``scored.json`` beside it (``shard_records``: the Map keeps no
results in the state): memory is one shard, and the shards are scored in parallel. Compare
then reads the records and the pairs and computes both AUCs exactly (``auc_merge``: the
concatenated pairs are the whole holdout's), and decides and logs ``[COMPARE]`` as on the
one-shot path.

The pairs are used only for the versions they were scored with: if the champion moved (or
the challenger is another) since the shards were scored, ``merged_aucs`` answers None and
the caller scores the holdout itself (``month_reads.holdout_aucs``), as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import shard_records, storage
from .logs import logger
from .schema import TARGET, month_index
from .settings import Settings
from .sharding import shard_features_key, shard_folder

if TYPE_CHECKING:
    import pandas as pd

CHALLENGER, CHAMPION, LABEL = "score_challenger", "score_champion", "label"


def pairs_key(month: str, shard: int) -> str:
    return f"{shard_folder(month, shard)}compare_pairs.parquet"


def score_shard(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """One shard's holdout scored by the challenger and the champion (a ScoreShards item:
    ``month``, ``shard``, ``challenger``); the pairs to S3, their versions in the result."""
    from . import registry
    from .split import split_by_user
    from .steps import champion_and_month, registry_call

    month, shard = event["month"], int(event["shard"])
    month_index(month)
    challenger = str(event["challenger"]["version"])
    champion, _ = champion_and_month(settings)
    uri, name = settings.mlflow_tracking_uri, settings.model_name
    models = {CHALLENGER: registry_call(registry.load_version, uri, name, challenger)}
    if champion:
        models[CHAMPION] = registry_call(registry.load_version, uri, name, champion)
    holdout = split_by_user(storage.read_frame(settings.data_bucket, shard_features_key(month, shard)))[1]
    pairs = shard_pairs(holdout, models)
    key = pairs_key(month, shard)
    storage.write_frame(settings.data_bucket, key, pairs)
    logger.info("shard scored", extra={"shard": shard, "holdout_users": len(pairs)})
    outcome = {"shard": shard, "pairs_key": key, "holdout_users": int(len(pairs)), "challenger": challenger,
               "champion": champion}
    shard_records.write(settings.data_bucket, month, shard, shard_records.SCORED, event.get("execution"), outcome)
    return outcome


def shard_pairs(holdout: pd.DataFrame, models: dict[str, Any]) -> pd.DataFrame:
    """A holdout's label and each model's score (columns ``CHALLENGER`` / ``CHAMPION``)."""
    import pandas as pd

    from .training import churn_probability

    labels = holdout[TARGET].astype("int8").to_numpy()
    pairs = pd.DataFrame({LABEL: labels})
    for column, model in models.items():  # an empty holdout: no model call (as month_reads)
        pairs[column] = churn_probability(model, holdout) if len(holdout) else labels.astype(float)
    return pairs


def scored_with(scored: list[dict[str, Any]], challenger: str, champion: str | None) -> bool:
    """Every shard was scored, by these two versions (a pure check of the shards' records)."""
    return bool(scored) and all(s and str(s.get("challenger")) == str(challenger) and s.get("champion") == champion
                                for s in scored)


def merged_aucs(bucket: str, month: str, shards: int, execution: str | None, challenger: str,
                champion: str | None) -> tuple[float, float | None] | None:
    """(challenger's AUC, champion's AUC or None) from the shards' pairs, exact; None when the
    pairs were not scored by these versions (the caller scores the holdout itself). Each shard's
    record (``scored.json``) is read from S3; a missing one is an error naming the shard."""
    from .auc_merge import ScorePairs

    scored = shard_records.read_all(bucket, month, shards, shard_records.SCORED, execution)
    if not scored_with(scored, challenger, champion):
        return None
    pairs = {CHALLENGER: ScorePairs(), CHAMPION: ScorePairs()}
    for shard in sorted(scored, key=lambda s: int(s["shard"])):
        frame = storage.read_frame(bucket, shard["pairs_key"])
        for column, merged in pairs.items():
            if column in frame:
                merged.add(frame[column].to_numpy(), frame[LABEL].to_numpy())
    return pairs[CHALLENGER].auc(), (pairs[CHAMPION].auc() if champion else None)


def measure_compare(event: dict[str, Any], result: dict[str, Any]) -> list:
    """Compare's metrics; a shard's scoring decides nothing, so it counts the holdout users it
    scored instead (no promotion metric per shard)."""
    from aws_lambda_powertools.metrics import MetricUnit

    from . import metrics

    if "shard" in event:
        return [("ShardHoldoutUsersScored", MetricUnit.Count, float(result.get("holdout_users") or 0))]
    return metrics.compare(event, result)
