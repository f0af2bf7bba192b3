"""Turn a pipeline step into a Lambda handler: settings once, log keys bound, step called,
and (with ``measure``) EMF metrics read off its result (see metrics.py).

A step that fails logs its full error (traceback included) and raises it again with a
one-line message (``causes.short_error``, same type, so Retry/Catch still match): that
message is what the execution's Fail cause shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .causes import short_error
from .logs import bind, logger
from .metrics import Measure, metrics, record
from .settings import Settings

Step = Callable[[Settings, dict[str, Any]], dict[str, Any]]


def lambda_step(step: Step, measure: Measure | None = None) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    settings = Settings.from_env()

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        bind(event.get("month"), event.get("execution"))
        try:
            result = step(settings, event)
        except Exception as exc:
            logger.exception(f"{step.__name__} failed: {exc}")
            raise short_error(exc) from None
        if measure is not None:
            record(measure, event, result)
        return result

    handler.__doc__ = step.__doc__
    return metrics.log_metrics(handler) if measure is not None else handler
