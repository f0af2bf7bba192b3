"""Validate: check the month's data contract before anything is built or trained."""

from streamflow import steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.validate)
