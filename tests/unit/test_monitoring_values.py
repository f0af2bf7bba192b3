"""The loop's values in a month's snapshot: the MeanValue results Evidently's Report would
give (what the dashboard's panels read), shown as counters, not as a one-bar histogram each.
A local folder workspace: what Evidently reads from it is what it reads from the bucket."""

from __future__ import annotations

import asyncio
import json

import pytest

from streamflow import monitoring

FACTS = {"month": "month_001", "execution": "x-1", "drift_share": 0.4, "drift_threshold": 0.3,
         "challenger_auc": 0.8412, "champion_auc": 0.8, "promotion_delta": 0.01, "decision": "promote",
         **{f"rows_{table}": 10_000 + i for i, table in enumerate(monitoring.ROW_TABLES)}}


def _report_document(facts: dict) -> dict:
    """What running Evidently's Report with a MeanValue per loop value gives (the old way)."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue

    values = monitoring.loop_values(facts)
    run = Report([MeanValue(column=c) for c in values]).run(
        current_data=Dataset.from_pandas(pd.DataFrame([values]),
                                         data_definition=DataDefinition(numerical_columns=list(values))),
        timestamp=monitoring.month_timestamp(facts["month"]), tags=monitoring.tags(facts),
        metadata=monitoring.metadata(facts), name=f"{facts['month']}: {facts.get('decision') or 'in progress'}")
    return run.to_snapshot_model().dict()


def _without_widgets(document: dict) -> dict:
    from evidently.legacy.utils import NumpyEncoder

    results = {k: {f: v for f, v in r.items() if f != "widget"} for k, r in document["metric_results"].items()}
    return json.loads(json.dumps({**document, "metric_results": results, "widgets": None}, cls=NumpyEncoder))


@pytest.mark.parametrize("facts", [FACTS, {"month": "month_003", "decision": "rejected_ingest"},
                                   {"month": "month_000", "challenger_auc": 0.8, "promotion_delta": 0.01}])
def test_the_loop_values_are_the_mean_values_a_report_gives(facts):
    ours, theirs = monitoring.loop_document(facts), _report_document(facts)
    assert _without_widgets(ours) == _without_widgets(theirs)
    assert ours["top_level_metrics"] == theirs["top_level_metrics"] and ours["top_level_metrics"]


def _workspace_with_a_month(tmp_path) -> str:
    uri = str(tmp_path / "workspace")
    event = {"month": "month_001", "execution": "x-1", "challenger": {"version": "2"},
             "validation": {"rows": {f"{table}.csv": 3000 for table in monitoring.ROW_TABLES}}}
    monitoring.record(uri, monitoring.drift_facts(event, {"drift_share": 0.4, "threshold": 0.3, "retrain": True}),
                      replace=True)
    monitoring.record(uri, monitoring.compare_facts(event, {"new_auc": 0.8412, "prod_auc": 0.8, "delta": 0.01,
                                                            "prod_version": "1", "decision": "promote"}, False))
    monitoring.record(uri, monitoring.promote_facts(event, {"promoted": True, "production_version": "2"}))
    return uri


def test_a_months_page_shows_each_value_as_a_counter_not_a_histogram(tmp_path):
    from evidently.legacy.model.widget import WidgetType

    uri = _workspace_with_a_month(tmp_path)
    state = monitoring._state(uri)
    model = state.read_snapshot(monitoring.project_id(), monitoring.snapshot_id("month_001"))
    assert model.widgets and {w.type for w in model.widgets} == {WidgetType.COUNTER.value}  # Report drew 13 plots
    shown = {c["label"]: c["value"] for w in model.widgets for c in w.params["counters"]}
    assert shown == {"drift_share": "0.4", "drift_threshold": "0.3", "challenger_auc": "0.8412",
                     "champion_auc": "0.8", "promotion_delta": "0.01", "promotion_bar": "0.81",
                     **{table: "3,000" for table in monitoring.ROW_TABLES}, "timeline_promoted": "1"}
    linked = [m for w in model.widgets for m in w.linked_metrics]
    assert sorted(linked) == sorted(model.metric_results) and len(model.metric_results) == len(shown)
    stored = monitoring._stored_document(state, "month_001")
    assert len(json.dumps(stored)) < 20_000  # was ≈ 230 kB of histograms (twice each)


def test_the_dashboards_panels_read_the_recorded_values(tmp_path):
    """Evidently's own series query (what the UI's panels ask the server for), one filter per
    value the dashboard plots."""
    from evidently.ui.service.base import SeriesFilter
    from evidently.ui.service.storage.local.base import InMemoryDataStorage

    uri = _workspace_with_a_month(tmp_path)
    storage = InMemoryDataStorage(uri)
    plotted = [value for panel in monitoring.dashboard().panels for value in getattr(panel, "values", [])
               if value.metric.endswith(":MeanValue")]
    filters = [SeriesFilter(tags=v.tags, metadata=v.metadata, metric=v.metric, metric_labels=v.metric_labels)
               for v in plotted]
    answer = asyncio.run(storage.get_data_series(monitoring.project_id(), filters, None, None))
    found = {s.params["column"]: s.values for s in answer.series}
    assert found == {"drift_threshold": [0.3], "challenger_auc": [0.8412], "champion_auc": [0.8],
                     "promotion_bar": [0.81], **{f"rows_{table}": [3000.0] for table in monitoring.ROW_TABLES},
                     "timeline_promoted": [1.0]}
    assert [s.timestamp for s in answer.sources] == [monitoring.month_timestamp("month_001")]
