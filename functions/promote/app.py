"""Promote: move alias Production (compare-and-set) and pin the API to the new champion."""

from streamflow import metrics, steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.promote, measure=metrics.promote)
