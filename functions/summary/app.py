"""Summary: the [SUMMARY] line and the execution's result."""

from streamflow import steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.summarize)
