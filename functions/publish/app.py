"""PublishOnlineFeatures: the month's features into the online table the API reads.

The same function publishes one shard of a sharded month (a PublishShards item) and marks
the month published once every shard is written (``action: mark``): see ``publish_steps``."""

from streamflow import publish_steps, shard_steps, steps
from streamflow.handlers import lambda_step

handler = lambda_step(shard_steps.route(steps.publish_online_features, publish_steps.publish_shard,
                                        mark=publish_steps.mark_month_published))
