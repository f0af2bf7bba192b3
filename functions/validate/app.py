"""Validate: check the month's data contract before anything is built or trained.

The same function plans the split of a month too big for one function (ShardMonth,
``action: shard``), splits one of its uploaded files into the shards (a SplitParts item,
``action: split``), writes the shards' items (PartsSplit, ``action: items``) and checks one
shard (a ValidateShards item): see shard_steps."""

from streamflow import shard_steps, steps
from streamflow.handlers import lambda_step

handler = lambda_step(shard_steps.route(steps.validate, shard_steps.validate_shard, shard=shard_steps.shard_month,
                                         split=shard_steps.split_part, items=shard_steps.write_shard_items))
