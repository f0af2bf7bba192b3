"""`streamflow status`: months in month order, each with its decision, and what a waiting
execution waits for (the pure parts of views.py and cli.py)."""

from __future__ import annotations

from streamflow_local.cli import _decision_cell
from streamflow_local.views import in_month_order, month_decision


def _execution(name: str, started: str, **extra) -> dict:
    return {"name": name, "month": name.rsplit("-", 1)[0], "started": started, **extra}


def test_executions_are_listed_by_month_number_then_start():
    found = [_execution("month_003-c", "10:00"), _execution("month_010-d", "09:00"), _execution("month_001-a", "11:00"),
             _execution("month_003-b", "09:30"), _execution("weird-e", "08:00")]
    assert [e["name"] for e in in_month_order(found)] == ["month_001-a", "month_003-b", "month_003-c",
                                                         "month_010-d", "weird-e"]


def test_the_decision_comes_from_the_summary_output():
    assert month_decision("SUCCEEDED", {"decision": "stale_month", "promoted": False}) == "stale_month"
    assert month_decision("SUCCEEDED", {"promoted": True}) == "promote"  # an execution from before `decision`
    assert month_decision("SUCCEEDED", {"promoted": False, "retrained": True}) == "keep_champion"
    assert month_decision("SUCCEEDED", {"promoted": False, "retrained": False}) == "no_retraining"
    assert month_decision("RUNNING", None) is None and month_decision("FAILED", {}) is None


def test_a_waiting_execution_says_what_it_waits_for():
    assert _decision_cell({"waiting_for": ["month_001", "month_002"], "decision": None}) == \
        "waiting for month_001, month_002 to decide"
    assert _decision_cell({"waiting_for": [], "decision": "promote"}) == "promote"
    assert _decision_cell({"decision": None}) == ""
