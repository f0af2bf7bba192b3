"""Structured JSON logs (Powertools Logger) shared by every function.

The lines people grep for keep their exact prefixes as the log *message*:
``RETRAINING_TRIGGERED``, ``[COMPARE]``, ``[SUMMARY]``.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "streamflow")
logger = Logger(service=SERVICE)


def bind(month: str | None = None, execution: str | None = None) -> None:
    """Put the month and execution on every following log line of this invocation."""
    keys = {k: v for k, v in {"month": month, "execution": execution}.items() if v}
    if keys:
        logger.append_keys(**keys)
