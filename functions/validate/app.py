"""Validate: check the month's data contract before anything is built or trained.

The same function splits a month too big for one function into shards (ShardMonth,
``action: shard``) and checks one shard (a ValidateShards item): see shard_steps."""

from streamflow import shard_steps, steps
from streamflow.handlers import lambda_step

handler = lambda_step(shard_steps.route(steps.validate, shard_steps.validate_shard, shard=shard_steps.shard_month))
