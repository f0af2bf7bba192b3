"""CloudWatch metrics in Embedded Metric Format (Powertools Metrics), namespace StreamFlow.

Each pipeline step's *result* (the small dict the next state reads) says what to measure, so
the steps stay free of metric calls and the grep-able log messages stay as they are. The
month and execution go in as metadata, not dimensions (one metric per month would be a new
CloudWatch metric every month); the dimension is the service (POWERTOOLS_SERVICE_NAME).

On AWS the EMF line on stdout becomes metrics in CloudWatch; locally it is one more JSON
line in the function's log (without a ``message``, so ``streamflow logs --grep`` skips it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "StreamFlow"
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE),
                  service=os.environ.get("POWERTOOLS_SERVICE_NAME", "streamflow"))

Measure = Callable[[dict[str, Any], dict[str, Any]], list[tuple[str, MetricUnit, float]]]


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def drift(event: dict[str, Any], result: dict[str, Any]) -> list[tuple[str, MetricUnit, float]]:
    points = [("RetrainingTriggered", MetricUnit.Count, 1.0 if result.get("retrain") else 0.0)]
    share = _number(result.get("drift_share"))
    if share is not None:
        points.append(("DriftShare", MetricUnit.NoUnit, share))
    return points


def train(event: dict[str, Any], result: dict[str, Any]) -> list[tuple[str, MetricUnit, float]]:
    auc = _number(result.get("val_auc"))
    return [("ChallengerValAuc", MetricUnit.NoUnit, auc)] if auc is not None else []


def compare(event: dict[str, Any], result: dict[str, Any]) -> list[tuple[str, MetricUnit, float]]:
    points = [("PromotionRecommended", MetricUnit.Count, 1.0 if result.get("promote") else 0.0)]
    for name, key in (("ChallengerAuc", "new_auc"), ("ChampionAuc", "prod_auc")):
        value = _number(result.get(key))
        if value is not None:
            points.append((name, MetricUnit.NoUnit, value))
    return points


def promote(event: dict[str, Any], result: dict[str, Any]) -> list[tuple[str, MetricUnit, float]]:
    return [("Promotions", MetricUnit.Count, 1.0 if result.get("promoted") else 0.0)]


def summary(event: dict[str, Any], result: dict[str, Any]) -> list[tuple[str, MetricUnit, float]]:
    return [("MonthsProcessed", MetricUnit.Count, 1.0),
            ("Retrained", MetricUnit.Count, 1.0 if result.get("retrained") else 0.0)]


def record(measure: Measure, event: dict[str, Any], result: dict[str, Any]) -> None:
    """Add what ``measure`` reads off a step's result; Metrics.log_metrics flushes them."""
    for name, unit, value in measure(event, result):
        metrics.add_metric(name=name, unit=unit, value=value)
    for key in ("month", "execution"):
        if event.get(key):
            metrics.add_metadata(key=key, value=str(event[key]))
