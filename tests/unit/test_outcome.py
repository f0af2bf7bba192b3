"""`streamflow status`: exit codes, one-line causes, ingest rejections, no RUNNING step in
an execution that has ended (pure rules of streamflow_local.outcome)."""

from __future__ import annotations

import json

import pytest

from streamflow.causes import one_line, short_error
from streamflow_local.outcome import (
    month_outcomes, readable_cause, settle_steps, shown_steps, status_exit_code,
)


def _step(state, status="RUNNING", parallel=False, fail_state=False):
    return {"state": state, "status": status, "seconds": None, "parallel": parallel, "fail_state": fail_state}


def test_a_failed_execution_leaves_no_step_running():
    steps = [_step("Validate", "DONE"), _step("BuildFeatures", "DONE"), _step("FeaturesReady", parallel=True),
             _step("PublishOnlineFeatures"), _step("DetectDrift", "FAILED"), _step("DetectDriftCaught", "DONE"),
             _step("DetectDriftFailed", fail_state=True)]
    settle_steps(steps, [{"type": "FailStateEntered"}, {"type": "ExecutionFailed"}])
    assert [s["status"] for s in steps] == ["DONE", "DONE", "FAILED", "STOPPED", "FAILED", "DONE", "FAILED"]
    assert [s["state"] for s in shown_steps(steps)] == ["Validate", "BuildFeatures", "FeaturesReady",
                                                        "PublishOnlineFeatures", "DetectDrift", "DetectDriftFailed"]


def test_a_running_execution_keeps_its_running_steps():
    steps = [_step("Validate", "DONE"), _step("BuildFeatures")]
    settle_steps(steps, [{"type": "TaskStateEntered"}])
    assert steps[1]["status"] == "RUNNING"


@pytest.mark.parametrize(("event", "parallel_status"), [("ExecutionAborted", "ABORTED"),
                                                         ("ExecutionTimedOut", "TIMED_OUT")])
def test_an_aborted_or_timed_out_execution_says_so(event, parallel_status):
    steps = [_step("FeaturesReady", parallel=True), _step("TrainChallenger")]
    settle_steps(steps, [{"type": event}])
    assert [s["status"] for s in steps] == [parallel_status, "STOPPED"]


def _execution(month, status, started):
    return {"name": f"{month}-abc", "month": month, "status": status, "started": started}


def test_exit_code_is_1_for_nothing_found_and_for_a_failed_or_rejected_latest_outcome():
    assert status_exit_code({}) == 1
    ok = [_execution("month_001", "FAILED", "2026-11-29T10:00:00+00:00"),
          _execution("month_001", "SUCCEEDED", "2026-11-29T11:00:00+00:00")]
    assert month_outcomes(ok, {}) == {"month_001": "SUCCEEDED"}
    assert status_exit_code(month_outcomes(ok, {})) == 0
    for status in ("FAILED", "TIMED_OUT", "ABORTED"):
        assert status_exit_code(month_outcomes([_execution("month_002", status, "2026-11-29T10:00:00+00:00")], {})) == 1
    assert status_exit_code({"month_001": "RUNNING"}) == 0


def test_an_ingest_rejection_counts_when_it_is_newer_than_the_last_execution():
    rejection = {"stage": "ingest", "rejected_at": "2026-11-29T12:00:00+00:00"}
    assert month_outcomes([], {"month_003": rejection}) == {"month_003": "REJECTED"}
    later = [_execution("month_003", "SUCCEEDED", "2026-11-29T13:00:00+00:00")]
    assert month_outcomes(later, {"month_003": rejection}) == {"month_003": "SUCCEEDED"}
    earlier = [_execution("month_003", "SUCCEEDED", "2026-11-29T11:00:00+00:00")]
    assert month_outcomes(earlier, {"month_003": rejection}) == {"month_003": "REJECTED"}
    assert month_outcomes([], {"month_004": dict(rejection, stage="validate")}) == {}


LAMBDA_CAUSE = json.dumps({
    "errorMessage": "month_106 breaks the data contract: usage_agg_30d.csv:watch_hours_30d: must be a number",
    "errorType": "ContractError",
    "stackTrace": ['  File "/work/wt/x/.venv/lib/python3.11/site-packages/streamflow/steps.py", line 70\\n'],
})


@pytest.mark.parametrize(("cause", "expected"), [
    ("Validate failed: month_106 breaks the data contract: x", "Validate failed: month_106 breaks the data contract: x"),
    (f"Validate failed: {LAMBDA_CAUSE}",
     "Validate failed: month_106 breaks the data contract: usage_agg_30d.csv:watch_hours_30d: must be a number"),
    (LAMBDA_CAUSE, "month_106 breaks the data contract: usage_agg_30d.csv:watch_hours_30d: must be a number"),
    (None, ""),
    ("a\nb", "a b"),
])
def test_readable_cause(cause, expected):
    assert readable_cause(cause) == expected


@pytest.mark.parametrize(("message", "expected"), [
    ("line one\n  line two", "line one line two"),
    ("[Errno 2] No such file or directory: '/work/wt/issue-10/.local-stack/code/x/app.py'",
     "[Errno 2] No such file or directory: 'app.py'"),
    ("see s3://bucket/quarantine/month_001/_REJECTION.json", "see s3://bucket/quarantine/month_001/_REJECTION.json"),
    ("MLflow at http://127.0.0.1:5000/api/2.0/mlflow unreachable", "MLflow at http://127.0.0.1:5000/api/2.0/mlflow unreachable"),
])
def test_one_line_drops_newlines_and_local_folders_keeps_urls(message, expected):
    assert one_line(message) == expected


def test_one_line_is_cut_to_the_limit():
    assert len(one_line("x" * 1000)) == 260 and one_line("x" * 1000).endswith("…")


class Custom(Exception):
    def __str__(self) -> str:
        return "custom\nmessage " + "y" * 400


def test_short_error_keeps_the_type_name_for_retry_and_catch():
    error = short_error(ValueError("first\nsecond"))
    assert type(error) is ValueError and str(error) == "first second"
    stand_in = short_error(Custom())
    assert type(stand_in).__name__ == "Custom" and len(str(stand_in)) <= 260 and "\n" not in str(stand_in)


def test_status_json_has_a_month_rejected_at_ingest_and_then_run_as_its_execution_only():
    """``status --json`` once raised KeyError here: a month rejected at ingest (a manifest sent
    before its files), then uploaded again and run, has no note, its outcome being the run's."""
    from streamflow_local.cli import _status_notes, status_rows

    run = _execution("month_014", "SUCCEEDED", "2026-11-29T11:00:00+00:00")
    still_rejected = {"stage": "ingest", "report": "quarantine/month_015/_REJECTION.json",
                      "rejected_at": "2026-11-29T10:00:00+00:00", "message": "manifest: sent before its files"}
    rejected = {"month_014": {**still_rejected, "report": "quarantine/month_014/_REJECTION.json"},
                "month_015": still_rejected}
    outcomes = month_outcomes([run], rejected)
    assert outcomes == {"month_014": "SUCCEEDED", "month_015": "REJECTED"}
    rows = status_rows([run], rejected, outcomes, _status_notes([run], rejected, outcomes))
    assert [(r["month"], r["status"]) for r in rows] == [("month_014", "SUCCEEDED"), ("month_015", "REJECTED")]
    assert rows[1]["report"] == "quarantine/month_015/_REJECTION.json" and "sent before its files" in rows[1]["cause"]
