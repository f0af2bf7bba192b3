"""Compare: challenger and champion on the same held-out users; should_promote decides.

The same function scores one shard's holdout for a sharded month (a ScoreShards item);
Compare then merges the shards' pairs: see compare_shards."""

from streamflow import compare_shards, shard_steps, steps
from streamflow.handlers import lambda_step

handler = lambda_step(shard_steps.route(steps.compare, compare_shards.score_shard),
                      measure=compare_shards.measure_compare)
