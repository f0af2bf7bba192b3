"""BuildFeatures: the month's model features, to S3 (PublishOnlineFeatures fills the online table)."""

from streamflow import steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.build_month_features)
