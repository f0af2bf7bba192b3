"""BuildFeatures: the month's model features, to S3 (PublishOnlineFeatures fills the online table).

The same function builds one shard's features (a ValidateShards item) and merges the
shards' (MergeShards, ``action: merge``): see shard_steps."""

from streamflow import shard_steps, steps
from streamflow.handlers import lambda_step

handler = lambda_step(shard_steps.route(steps.build_month_features, shard_steps.build_shard_features,
                                        merge=shard_steps.merge_shards))
