"""The monitoring workspace: what each step records for a month, and that it lands in S3
(s3fs through AWS_ENDPOINT_URL, the emulator's moto server) as one entry per month."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

from aws_endpoint import endpoint_env, moto_endpoint
from streamflow import monitoring


def test_month_timestamps_are_the_datas_calendar_months():
    assert monitoring.month_timestamp("month_000") == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert monitoring.month_timestamp("month_011") == dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    assert monitoring.month_timestamp("month_013") == dt.datetime(2027, 2, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(ValueError):
        monitoring.month_timestamp("2026-01")


@pytest.mark.parametrize(("decision", "bar"), [
    ("rejected_ingest", "rejected"), ("rejected_validate", "rejected"), ("no_retraining", "no_drift"),
    ("keep_champion", "kept"), ("stale_month", "kept"), ("rejected", "kept"), ("rejected_timeout", "kept"),
    ("promote", "promoted"), ("rolled_back", "rolled_back"), ("awaiting_approval", "awaiting_approval"),
    (None, None), ("something else", None),
])
def test_every_decision_has_its_bar_on_the_timeline(decision, bar):
    assert monitoring.timeline_class(decision) == bar
    assert bar is None or bar in monitoring.TIMELINE


def test_drift_facts_name_rows_drift_and_a_month_that_stops_here():
    event = {"month": "month_004", "execution": "x-1",
             "validation": {"rows": {"users.csv": 3000, "usage_agg_30d.csv": 2999, "notes.csv": 5}}}
    facts = monitoring.drift_facts(event, {"drift_share": 0.07, "threshold": 0.3, "retrain": False,
                                           "reference_month": "month_001", "champion_version": "2"})
    assert facts["decision"] == "no_retraining" and facts["drift_share"] == 0.07 and facts["drift_threshold"] == 0.3
    assert facts["rows_users"] == 3000 and facts["rows_usage_agg_30d"] == 2999
    assert "rows_notes" not in facts  # not a table of the month's contract
    retrain = monitoring.drift_facts(event, {"drift_share": 0.5, "threshold": 0.3, "retrain": True})
    assert retrain["decision"] is None and retrain["reference_month"] == "none"


def test_compare_facts_wait_for_a_person_when_approval_is_required():
    event = {"month": "month_001", "execution": "x", "challenger": {"version": "3"}}
    outcome = {"new_auc": 0.84, "prod_auc": 0.80, "delta": 0.01, "prod_version": "2", "decision": "promote"}
    assert monitoring.compare_facts(event, outcome, require_approval=False)["decision"] == "promote"
    facts = monitoring.compare_facts(event, outcome, require_approval=True)
    assert facts["decision"] == "awaiting_approval"
    assert (facts["challenger_auc"], facts["champion_auc"], facts["challenger_version"]) == (0.84, 0.80, "3")
    kept = monitoring.compare_facts(event, {**outcome, "decision": "keep_champion"}, require_approval=True)
    assert kept["decision"] == "keep_champion"


def test_loop_values_chart_what_is_known_and_nothing_else():
    values = monitoring.loop_values({"month": "month_001", "challenger_auc": 0.83, "champion_auc": 0.8,
                                     "promotion_delta": 0.01, "rows_users": 3000, "decision": "promote"})
    assert values == {"challenger_auc": 0.83, "champion_auc": 0.8, "promotion_delta": 0.01,
                      "promotion_bar": 0.81, "rows_users": 3000.0, "timeline_promoted": 1.0}
    first = monitoring.loop_values({"month": "month_000", "challenger_auc": 0.8, "champion_auc": None,
                                    "promotion_delta": 0.01, "decision": "promote"})
    assert "champion_auc" not in first and "promotion_bar" not in first  # no champion: no bar, not a zero


def test_rejection_report_becomes_a_rejected_entry():
    facts = monitoring.rejection_facts({"month": "month_009", "stage": "validate", "execution": "e",
                                        "rejected_at": "2026-11-29T10:00:00+00:00", "message": "x" * 900})
    assert facts["decision"] == "rejected_validate" and len(facts["message"]) == 500
    assert monitoring.timeline_class(facts["decision"]) == "rejected"


def test_dashboard_has_the_panels_the_issue_lists():
    titles = [panel.title for panel in monitoring.dashboard().panels]
    for expected in ("Share of drifted columns", "Decision per month", "Challenger vs champion AUC",
                     "Rows per month", "Drift score per numeric feature", "Drift score per categorical feature"):
        assert any(title.startswith(expected) for title in titles), (expected, titles)
    timeline = next(p for p in monitoring.dashboard().panels if p.title == "Decision per month")
    assert [v.metric_labels["column"] for v in timeline.values] == [f"timeline_{k}" for k in monitoring.TIMELINE]


@pytest.fixture
def bucket(monkeypatch):
    with moto_endpoint() as endpoint:
        for key, value in endpoint_env(endpoint).items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv(monitoring.WORKSPACE_ENV, raising=False)
        name = "monitoring-unit"  # a server of its own per test: the workspace must follow the endpoint
        boto3.client("s3").create_bucket(Bucket=name)
        yield name


def _entries(bucket: str) -> dict[str, dict]:
    state = monitoring._state(monitoring.workspace_uri(bucket))
    out = {}
    for sid in state.list_snapshots(monitoring.project_id()):
        model = state.read_snapshot(monitoring.project_id(), sid)
        out[model.metadata["month"]] = {"metadata": model.metadata, "timestamp": model.timestamp,
                                        "metrics": {r.metric_value_location.metric.params.get("column"): r.value
                                                    for r in model.metric_results.values()}}
    return out


def test_steps_add_to_one_entry_per_month_in_the_bucket(bucket):
    uri = monitoring.workspace_uri(bucket)
    assert uri == f"s3://{bucket}/monitoring"
    event = {"month": "month_001", "execution": "x-1", "challenger": {"version": "2"},
             "validation": {"rows": {"users.csv": 3000}}}
    monitoring.record(uri, monitoring.drift_facts(event, {"drift_share": 0.4, "threshold": 0.3, "retrain": True}),
                      replace=True)
    monitoring.record(uri, monitoring.compare_facts(event, {"new_auc": 0.84, "prod_auc": 0.8, "delta": 0.01,
                                                            "prod_version": "1", "decision": "promote"}, True))
    (entry,) = _entries(bucket).values()
    assert entry["metadata"]["decision"] == "awaiting_approval"
    assert entry["metadata"]["drift_share"] == "0.4" and entry["metadata"]["rows_users"] == "3000"  # kept from DetectDrift
    assert entry["metrics"]["challenger_auc"] == 0.84 and entry["metrics"]["timeline_awaiting_approval"] == 1.0
    assert entry["timestamp"].date() == dt.date(2026, 2, 1)
    monitoring.record(uri, monitoring.promote_facts(event, {"promoted": True, "production_version": "2"}))
    (entry,) = _entries(bucket).values()
    assert entry["metadata"]["decision"] == "promote" and "timeline_awaiting_approval" not in entry["metrics"]
    assert entry["metrics"]["timeline_promoted"] == 1.0 and entry["metrics"]["rows_users"] == 3000.0


def test_quarantined_months_join_the_timeline_once(bucket):
    s3 = boto3.client("s3")
    report = {"month": "month_007", "stage": "ingest", "rejected_at": "2026-11-29T10:00:00+00:00",
              "message": "users.csv: sha256 differs from the manifest"}
    s3.put_object(Bucket=bucket, Key="quarantine/month_007/_REJECTION.json", Body=json.dumps(report).encode())
    uri = monitoring.workspace_uri(bucket)
    assert monitoring.sync_rejections(uri, bucket) == ["month_007"]
    assert monitoring.sync_rejections(uri, bucket) == []  # already on the timeline
    entry = _entries(bucket)["month_007"]
    assert entry["metadata"]["decision"] == "rejected_ingest" and entry["metrics"] == {"timeline_rejected": 1.0}


def test_a_month_rejected_again_shows_its_newest_rejection(bucket):
    """Each rejection has its attempt folder; the timeline shows the newest, and a rejection
    after the entry was written replaces it (the same decision once hid the new message)."""
    s3, uri = boto3.client("s3"), monitoring.workspace_uri(bucket)

    def reject(attempt: str, message: str, rejected_at: str = "2026-12-01T10:00:00.000+00:00") -> None:
        report = {"month": "month_008", "stage": "ingest", "message": message, "rejected_at": rejected_at}
        s3.put_object(Bucket=bucket, Key=f"quarantine/month_008/{attempt}/_REJECTION.json", Body=json.dumps(report))

    reject("20261201T100000.000Z", "first: users.csv sha256 differs")
    reject("20261201T110000.000Z", "second: labels.csv missing", "2026-12-01T11:00:00.000+00:00")
    assert monitoring.sync_rejections(uri, bucket) == ["month_008"]
    assert _entries(bucket)["month_008"]["metadata"]["message"] == "second: labels.csv missing"
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)).isoformat(timespec="milliseconds")
    reject("20261201T120000.000Z", "third: manifest not JSON", later)  # after the entry was written
    assert monitoring.sync_rejections(uri, bucket) == ["month_008"]
    assert monitoring.sync_rejections(uri, bucket) == []
    assert _entries(bucket)["month_008"]["metadata"]["message"] == "third: manifest not JSON"


def test_a_refused_promotion_replaces_awaiting_approval_and_keeps_what_was_measured(bucket):
    uri = monitoring.workspace_uri(bucket)
    event = {"month": "month_004", "execution": "x", "challenger": {"version": "3"}}
    monitoring.record(uri, monitoring.drift_facts(event, {"drift_share": 0.5, "threshold": 0.3, "retrain": True}),
                      replace=True)
    monitoring.record(uri, monitoring.compare_facts(event, {"new_auc": 0.86, "prod_auc": 0.8, "delta": 0.01,
                                                            "prod_version": "2", "decision": "promote"}, True))
    assert _entries(bucket)["month_004"]["metadata"]["decision"] == "awaiting_approval"
    decided = {"month": "month_004", "decision": "rejected_timeout", "by": "timeout", "reason": "approval timed out",
               "rejected_at": "2999-01-01T00:00:00+00:00"}
    boto3.client("s3").put_object(Bucket=bucket, Key="approvals/decided/month_004.json", Body=json.dumps(decided))
    assert monitoring.sync_rejections(uri, bucket) == ["month_004"]
    assert monitoring.sync_rejections(uri, bucket) == []
    entry = _entries(bucket)["month_004"]
    assert entry["metadata"]["decision"] == "rejected_timeout"
    assert entry["metadata"]["rejected_reason"] == "approval timed out"
    assert entry["metrics"]["timeline_kept"] == 1.0 and "timeline_awaiting_approval" not in entry["metrics"]
    assert entry["metrics"]["challenger_auc"] == 0.86 and entry["metadata"]["drift_share"] == "0.5"


def test_a_warm_process_sees_a_workspace_changed_by_another_client(bucket):
    """The S3 filesystem is kept between records (a new one costs ≈ 0.5 s), but not its
    listings: a project deleted behind its back is written again."""
    from evidently.ui.storage.local.base import PROJECT_FILE_NAME

    uri = monitoring.workspace_uri(bucket)
    monitoring.record(uri, {"month": "month_010", "decision": "no_retraining"}, replace=True)
    s3 = boto3.client("s3")
    project_key = f"monitoring/{monitoring.project_id()}/{PROJECT_FILE_NAME}"
    s3.head_object(Bucket=bucket, Key=project_key)
    assert monitoring.project_id() in monitoring._state(uri).list_projects()  # a listing, now cached
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="monitoring/")["Contents"]:
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    monitoring.record(uri, {"month": "month_011", "decision": "no_retraining"}, replace=True)
    s3.head_object(Bucket=bucket, Key=project_key)
    assert list(_entries(bucket)) == ["month_011"]


def test_a_snapshot_is_written_as_evidently_writes_it(bucket):
    from evidently.ui.storage.local.base import LocalState

    uri = monitoring.workspace_uri(bucket)
    monitoring.record(uri, {"month": "month_012", "decision": "promote", "challenger_auc": 0.8}, replace=True)
    state = monitoring._state(uri)
    pid, ours = monitoring.project_id(), monitoring.snapshot_id("month_012")
    model = state.read_snapshot(pid, ours)
    theirs = monitoring.snapshot_id("month_099")
    LocalState.write_snapshot(state, pid, theirs, model)
    state.write_snapshot(pid, ours, model)
    s3 = boto3.client("s3")
    body = {sid: s3.get_object(Bucket=bucket, Key=f"monitoring/{pid}/snapshots/{sid}.json")["Body"].read()
            for sid in (ours, theirs)}
    assert body[ours] == body[theirs] and len(body[ours]) > 1000


def test_facts_added_to_a_stored_snapshot_give_the_document_evidently_models_would(bucket):
    """A later step merges its values into the month's stored JSON without Evidently's
    models; the document must be the one the models' merge gives (read, merge, ``.dict()``)."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.utils import NumpyEncoder
    from evidently.metrics import DriftedColumnsCount, MeanValue
    from evidently.ui.storage.local.base import SnapshotModel
    from pydantic.v1 import parse_obj_as

    uri = monitoring.workspace_uri(bucket)
    reference = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0] * 5, "b": [0.0, 1.0] * 10})
    current = pd.DataFrame({"a": [5.0, 6.0, 7.0, 8.0] * 5, "b": [1.0, 0.0, 1.0, 1.0] * 5})
    definition = DataDefinition(numerical_columns=["a", "b"])
    drift_run = Report([DriftedColumnsCount(), MeanValue(column="a")]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition))
    monitoring.record(uri, {"month": "month_003", "drift_share": 0.5, "decision": None}, drift_run, replace=True)
    state = monitoring._state(uri)
    stored = monitoring._stored_document(state, "month_003")
    assert stored["metadata"]["drift_widgets"] == str(len(drift_run.to_snapshot_model().widgets))
    values = {"challenger_auc": 0.8, "drift_share": 0.5}
    loop = Report([MeanValue(column=c) for c in values]).run(
        current_data=Dataset.from_pandas(pd.DataFrame([values]),
                                         data_definition=DataDefinition(numerical_columns=list(values))))
    ours = monitoring.merged_document(stored, loop.to_snapshot_model().dict(), int(stored["metadata"]["drift_widgets"]))

    base, model = parse_obj_as(SnapshotModel, stored), loop.to_snapshot_model()
    kept = {k: v for k, v in base.metric_results.items()
            if not v.metric_value_location.metric.params.get("type", "").endswith(":MeanValue")}
    model.metric_results = {**kept, **model.metric_results}
    model.top_level_metrics = [m for m in base.top_level_metrics if m in kept] + model.top_level_metrics
    model.widgets = list(base.widgets[:int(stored["metadata"]["drift_widgets"])]) + list(model.widgets)

    def as_json(document):
        return json.loads(json.dumps(document, cls=NumpyEncoder))

    assert as_json(ours) == as_json(model.dict())
    assert len(ours["metric_results"]) == len(kept) + 2 and len(kept) >= 1  # the drift count kept, MeanValue('a') not
    state.write_document(monitoring.project_id(), monitoring.snapshot_id("month_003"), ours)
    read_back = state.read_snapshot(monitoring.project_id(), monitoring.snapshot_id("month_003"))
    assert set(read_back.metric_results) == set(ours["metric_results"])  # Evidently reads what was written


def test_a_failed_write_is_logged_and_does_not_fail_the_month(monkeypatch, caplog):
    monkeypatch.setenv(monitoring.WORKSPACE_ENV, "nosuchprotocol://nowhere")
    monitoring.record_safely("any", {"month": "month_001", "decision": "promote"})
    assert "MONITORING_NOT_RECORDED month=month_001" in caplog.text


def test_readme_states_what_the_code_does(monkeypatch):
    from pathlib import Path

    from streamflow_local.config import PROJECT_ROOT, StackConfig

    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("## Monitoring"):]
    section = section[:section.index("\n## ", 1)]
    monkeypatch.delenv("STREAMFLOW_UI_PORT", raising=False)
    assert f"on {StackConfig().ui_url} (STREAMFLOW_UI_PORT)" in section
    assert f"month_000 = {monitoring.FIRST_MONTH:%B %Y}" in section
    assert f"s3://<DataBucket>/{monitoring.WORKSPACE_PREFIX}/" in section and f"**{monitoring.PROJECT_NAME}**" in section
    assert "MONITORING_NOT_RECORDED" in section and "MONITORING_NOT_RECORDED" in Path(monitoring.__file__).read_text()
    assert " / ".join(monitoring.TIMELINE) in " ".join(section.split())
    assert (PROJECT_ROOT / "docs" / "monitoring.png").exists()
