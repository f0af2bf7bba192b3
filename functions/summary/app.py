"""Summary: the [SUMMARY] line and the execution's result."""

from streamflow import metrics, steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.summarize, measure=metrics.summary)
