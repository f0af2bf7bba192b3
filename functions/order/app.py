"""MonthOrder: months decide in month order (see streamflow/month_order.py).

One small zip function for the four moments of a month's place in the queue: ``register``
(first state), ``await`` (a ``waitForTaskToken`` task after BuildFeatures), ``release``
(after Summary), and the EventBridge "Step Functions Execution Status Change" of an execution
that failed, was aborted or timed out (it will never release itself).

It also reads, for a sharded month's failed Distributed Map, which shards failed and why
(``map_failure``: the ``<Map>NameShards`` tasks; see streamflow/map_failures.py): it is the
function that already talks to the state machine's executions.
"""

from typing import Any

from streamflow import map_failures, month_order
from streamflow.logs import bind, logger
from streamflow.settings import Settings

settings = Settings.from_env()
ACTIONS = {
    "register": month_order.register_month,
    "await": month_order.await_earlier_months,
    "release": month_order.release_month,
    "map_failure": map_failures.explain_map_failure,
}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("detail-type") == "Step Functions Execution Status Change":
        return month_order.month_ended(settings, event)
    bind(event.get("month"), event.get("execution"))
    action = event.get("action")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: expected one of {sorted(ACTIONS)}")
    return ACTIONS[action](settings, event)
