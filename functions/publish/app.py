"""PublishOnlineFeatures: the month's features into the online table the API reads."""

from streamflow import steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.publish_online_features)
