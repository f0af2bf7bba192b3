"""The grep-able [SUMMARY] line names the reference month at its end, and a backfill's
decision; the fields before it keep their order."""

from __future__ import annotations

import pytest

from streamflow import steps
from streamflow.drift import titled
from streamflow.settings import Settings

SETTINGS = Settings(data_bucket="b", feature_table="t", model_name="m", mlflow_tracking_uri="", reference_month="champion",
                    drift_threshold=0.02, promotion_delta=0.01, state_machine_arn="", api_function_name="")


def _summary_line(caplog, event) -> tuple[str, dict]:
    caplog.clear()
    with caplog.at_level("INFO", logger="streamflow"):
        result = steps.summarize(SETTINGS, event)
    return next(r.getMessage() for r in caplog.records if r.getMessage().startswith("[SUMMARY]")), result


def test_the_seed_month_001_line_is_unchanged_but_for_the_reference(caplog):
    event = {"month": "month_001", "drift": {"drift_share": 0.3571, "reference_month": "month_000"},
             "challenger": {"version": "2"}, "compare": {"promote": True, "decision": "promote", "prod_version": "1"},
             "promotion": {"promoted": True, "production_version": "2"}}
    line, result = _summary_line(caplog, event)
    assert line == ("[SUMMARY] month=month_001 drift_share=0.3571 retrained=True promoted=True "
                    "production_version=2 reference=month_000")
    assert result["decision"] == "promote" and result["reference_month"] == "month_000"


def test_the_first_month_has_no_reference(caplog):
    event = {"month": "month_000", "drift": {"drift_share": 0.0, "reference_month": None, "champion_version": None},
             "challenger": {"version": "1"}, "compare": {"promote": True, "decision": "promote", "prod_version": None},
             "promotion": {"promoted": True, "production_version": "1"}}
    line, _ = _summary_line(caplog, event)
    assert line == ("[SUMMARY] month=month_000 drift_share=0.0 retrained=True promoted=True "
                    "production_version=1 reference=none")


def test_a_backfill_says_stale_month_before_the_reference(caplog):
    event = {"month": "month_001", "drift": {"drift_share": 0.2, "reference_month": "month_003", "stale": True},
             "challenger": {"version": "6"},
             "compare": {"promote": False, "decision": "stale_month", "prod_version": "4"}}
    line, result = _summary_line(caplog, event)
    assert line == ("[SUMMARY] month=month_001 drift_share=0.2 retrained=True promoted=False "
                    "production_version=4 decision=stale_month reference=month_003")
    assert result["decision"] == "stale_month"


@pytest.mark.parametrize(
    ("event", "decision"),
    [({"drift": {"champion_version": "1"}}, "no_retraining"),
     ({"drift": {"stale": True, "champion_version": "3"}}, "stale_month"),
     ({"challenger": {"version": "3"}, "compare": {"promote": False, "decision": "keep_champion"}}, "keep_champion"),
     ({"challenger": {"version": "3"}, "compare": {"promote": True, "decision": "promote"},
       "rejection": {"timed_out": True}}, "rejected_timeout")],
)
def test_every_month_ends_with_one_decision(caplog, event, decision):
    _, result = _summary_line(caplog, {"month": "month_002", **event})
    assert result["decision"] == decision


def test_the_drift_report_is_titled_with_both_months():
    html = b"<!doctype html><html><head><meta charset='utf-8'><title>Evidently</title></head><body/></html>"
    assert b"<title>StreamFlow drift: month_003 against month_002</title>" in titled(
        html, "StreamFlow drift: month_003 against month_002")
    assert titled(b"<html><head></head></html>", "a & b") == b"<html><head><title>a &amp; b</title></head></html>"
