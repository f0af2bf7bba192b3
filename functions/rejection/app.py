"""RecordRejection: note who rejected the challenger (or that approval timed out) and why."""

from streamflow import steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.record_rejection)
