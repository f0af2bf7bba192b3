"""DetectDrift: Evidently drift against the reference month; HTML report kept in S3."""

from streamflow import metrics, steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.detect_drift, measure=metrics.drift)
