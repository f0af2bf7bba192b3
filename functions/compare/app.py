"""Compare: challenger and champion on the same held-out users; should_promote decides."""

from streamflow import metrics, steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.compare, measure=metrics.compare)
