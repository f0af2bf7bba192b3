"""The loop's history as an Evidently workspace: project "StreamFlow churn", one snapshot
per month, kept in the data bucket (``s3://<bucket>/monitoring``; Evidently's storage goes
through fsspec, s3fs reaches the emulator through ``AWS_ENDPOINT_URL``).

DetectDrift writes the month's snapshot (its drift run plus the loop's values); Compare and
Promote write it again with what they measured and decided; months rejected at ingest or by
Validate, and refused promotions, are added from the records they leave in the bucket
(``sync_rejections``, run by ``streamflow ui``). The snapshot id is
derived from the month, so each write replaces the month's entry instead of adding one.
The loop's own values (AUCs, decision, rows) are ``MeanValue`` results, as a Report of a
one-row dataset would give them: a built-in metric, so Evidently's stock UI plots them. They
are made by the metric's own calculation without running the Report (``loop_document``): its
``MeanValue`` draws a plotly histogram per value, most of a record's cost; the month's page
shows them as counters. A failed write never fails the month.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import uuid
from typing import Any

from .logs import logger
from .promotion import STALE_MONTH
from .schema import MONTH_FILES, month_index

PROJECT_NAME = "StreamFlow churn"
WORKSPACE_PREFIX = "monitoring"
WORKSPACE_ENV = "MONITORING_WORKSPACE"  # overrides s3://<DATA_BUCKET>/monitoring
FIRST_MONTH = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # month_000, as the generator dates it
_NAMESPACE = uuid.UUID("6f1c1d2e-5b0a-4c55-9a51-5eb0c0a3d15f")

# The decision timeline, one bar colour each (what a month did, in the words).
TIMELINE = ("rejected", "no_drift", "kept", "promoted", "rolled_back", "awaiting_approval")
_TIMELINE_OF = {
    "rejected_ingest": "rejected", "rejected_validate": "rejected",
    "no_retraining": "no_drift",
    "keep_champion": "kept", STALE_MONTH: "kept", "rejected": "kept", "rejected_timeout": "kept",
    "promote": "promoted", "rolled_back": "rolled_back", "awaiting_approval": "awaiting_approval",
}
ROW_TABLES = tuple(name.removesuffix(".csv") for name in MONTH_FILES)  # users, subscriptions, usage_agg_30d, …
_NUMBERS = ("drift_share", "drift_threshold", "challenger_auc", "champion_auc", "promotion_delta")


def timeline_class(decision: str | None) -> str | None:
    """The timeline bar a decision word belongs to (None: not decided yet)."""
    return _TIMELINE_OF.get(decision or "")


def project_id() -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, PROJECT_NAME)


def snapshot_id(month: str) -> uuid.UUID:
    return uuid.uuid5(project_id(), month)


def month_timestamp(month: str) -> dt.datetime:
    """month_NNN → the first day of its calendar month (month_000 = January 2026): the
    dashboard's x axis is the data's month, not the moment it was processed."""
    index = month_index(month)
    year, month0 = divmod(FIRST_MONTH.month - 1 + index, 12)
    return FIRST_MONTH.replace(year=FIRST_MONTH.year + year, month=month0 + 1)


def loop_values(facts: dict[str, Any]) -> dict[str, float]:
    """The numbers the dashboard plots for one month (absent ones are left out, not zero)."""
    values = {name: float(facts[name]) for name in _NUMBERS if facts.get(name) is not None}
    if facts.get("champion_auc") is not None and facts.get("promotion_delta") is not None:
        values["promotion_bar"] = round(float(facts["champion_auc"]) + float(facts["promotion_delta"]), 6)
    for table in ROW_TABLES:
        if facts.get(f"rows_{table}") is not None:
            values[f"rows_{table}"] = float(facts[f"rows_{table}"])
    kind = timeline_class(facts.get("decision"))
    if kind is not None:
        values[f"timeline_{kind}"] = 1.0
    return values


def metadata(facts: dict[str, Any]) -> dict[str, str]:
    """Every fact as text (Evidently's snapshot metadata is str → str); read back to merge."""
    return {key: str(value) for key, value in sorted(facts.items()) if value is not None}


def _parsed(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        try:
            out[key] = json.loads(value) if key in _NUMBERS or key.startswith("rows_") else value
        except (TypeError, ValueError):
            out[key] = value
    return out


def tags(facts: dict[str, Any]) -> list[str]:
    out = [facts["month"]]
    if facts.get("decision"):
        out.append(f"decision:{facts['decision']}")
    if facts.get("execution"):
        out.append(f"execution:{facts['execution']}")
    return out


def workspace_uri(bucket: str) -> str:
    return os.environ.get(WORKSPACE_ENV) or f"s3://{bucket}/{WORKSPACE_PREFIX}"


@functools.cache
def _state_class():
    """Evidently's ``LocalState`` with its snapshot write made cheap on an object store (a
    class made on first use: ``import evidently`` costs seconds, see ``drift``)."""
    from evidently.legacy.utils import NumpyEncoder
    from evidently.ui.storage.local.base import LocalState

    class OneWriteState(LocalState):
        """Evidently ``json.dump``s into the open fsspec file, one ``write`` per JSON token
        (≈ 270,000 for a 10k month's drift snapshot), each through fsspec's buffering; here
        the same text is built in memory and written once (0.56 → 0.39 s a write, measured
        against the emulator)."""

        def write_snapshot(self, project_id, snapshot_id, snapshot) -> None:
            self.write_document(project_id, snapshot_id, snapshot.dict())

        def write_document(self, project_id, snapshot_id, document: dict[str, Any]) -> None:
            """A snapshot given as its document (``SnapshotModel.dict()``, or JSON read back)."""
            text = json.dumps(document, cls=NumpyEncoder)
            self.location.makedirs(self._snapshot_dir(project_id))
            with self.location.open(self._snapshot_path(project_id, snapshot_id), "w") as f:
                f.write(text)

    return OneWriteState


_S3FS_ENVIRONMENT = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION", "AWS_REGION")
_s3fs_made_for: list[tuple[str | None, ...]] = []  # those variables when fsspec's S3FileSystem was made


def _state(uri: str):
    if uri.startswith("s3://"):
        import fsspec

        # fsspec hands out one cached S3FileSystem per process, with its listings and the
        # endpoint and credentials it was made for. A process that talks to several stacks
        # (the test suite) must not keep a stale endpoint: the cache is dropped when those
        # change. A warm worker must not read stale listings: they are dropped each time.
        # The filesystem itself is kept: a new one costs ≈ 0.5 s (an aiobotocore session).
        environment = tuple(os.environ.get(name) for name in _S3FS_ENVIRONMENT)
        if _s3fs_made_for != [environment]:
            fsspec.get_filesystem_class("s3").clear_instance_cache()
            _s3fs_made_for[:] = [environment]
        fsspec.filesystem("s3").invalidate_cache()
    return _state_class()(uri)


def dashboard():
    """The project's dashboard, defined here rather than clicked together in the UI."""
    from evidently.sdk.models import DashboardModel, PanelMetric
    from evidently.sdk.panels import bar_plot_panel, line_plot_panel, text_panel

    from .schema import BOOLEAN_FEATURES, CATEGORICAL_FEATURES, NUMERIC_FEATURES

    def loop(column: str, legend: str) -> PanelMetric:
        return PanelMetric(legend=legend, metric="evidently:metric_v2:MeanValue", metric_labels={"column": column})

    def drift(column: str) -> PanelMetric:
        return PanelMetric(legend=column, metric="evidently:metric_v2:ValueDrift", metric_labels={"column": column})

    panels = [
        text_panel("StreamFlow churn: one entry per month",
                   "x axis = the data's month. Decisions: rejected (at ingest or by Validate), no_drift, kept "
                   "(retrained, champion kept), promoted, rolled_back, awaiting_approval."),
        line_plot_panel("Share of drifted columns per month (line: the retraining threshold)", [
            PanelMetric(legend="share of drifted columns", metric="evidently:metric_v2:DriftedColumnsCount",
                        metric_labels={"value_type": "share"}),
            loop("drift_threshold", "threshold"),
        ], size="half"),
        bar_plot_panel("Decision per month", [loop(f"timeline_{kind}", kind) for kind in TIMELINE],
                       size="half", stacked=True),
        line_plot_panel("Challenger vs champion AUC on the month's held-out users (bar = champion + delta)", [
            loop("challenger_auc", "challenger AUC"), loop("champion_auc", "champion AUC"),
            loop("promotion_bar", "champion AUC + delta (to promote)"),
        ], size="half"),
        bar_plot_panel("Rows per month", [loop(f"rows_{table}", table) for table in ROW_TABLES], size="half"),
        line_plot_panel("Drift score per numeric feature (Wasserstein distance, normed)",
                        [drift(c) for c in NUMERIC_FEATURES], size="half"),
        line_plot_panel("Drift score per categorical feature (Jensen-Shannon distance)",
                        [drift(c) for c in BOOLEAN_FEATURES + CATEGORICAL_FEATURES], size="half"),
    ]
    return DashboardModel(tabs=[], panels=panels)


def ensure_project(uri: str, write_dashboard: bool = False):
    """The project (fixed id, so concurrent months agree on it), with its dashboard."""
    from evidently.sdk.models import ProjectModel

    state = _state(uri)
    pid = project_id()
    if pid not in state.list_projects():  # ProjectIDs are UUIDs
        state.write_project(ProjectModel(id=pid, name=PROJECT_NAME,
                                         description="The StreamFlow loop month by month: drift, AUC, decisions"))
        write_dashboard = True
    if write_dashboard:
        state.write_dashboard(pid, dashboard())
    return state


def _stored_document(state, month: str) -> dict[str, Any] | None:
    """The month's stored snapshot as its JSON document, or None when there is none. Read as
    plain JSON: a step that adds its facts only copies the drift run's metrics and widgets
    across, so Evidently's models (≈ 0.1 s to parse and again to serialise at 10k) are not
    needed for them."""
    try:
        with state.location.open(state._snapshot_path(project_id(), snapshot_id(month))) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def _stored_facts(state, month: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(facts, the stored snapshot's document) of a month already in the workspace, or ({}, None)."""
    stored = _stored_document(state, month)
    return ({}, None) if stored is None else (_parsed(dict(stored["metadata"])), stored)


def _is_loop_value(result: dict[str, Any]) -> bool:
    """A metric result of the loop's own values (a ``MeanValue``), not of the drift run."""
    params = ((result.get("metric_value_location") or {}).get("metric") or {}).get("params") or {}
    return str(params.get("type", "")).endswith(":MeanValue")


# The snapshot page shows the loop's values as rows of counters, one row per subject.
_VALUE_ROWS = (
    ("Drift: share of drifted columns, retraining threshold", ("drift_share", "drift_threshold")),
    ("AUC on the month's held-out users (promotion_bar = champion + delta)",
     ("challenger_auc", "champion_auc", "promotion_delta", "promotion_bar")),
    ("Rows per table (rows_<table>)", tuple(f"rows_{table}" for table in ROW_TABLES)),
    ("Decision (its bar on the timeline)", tuple(f"timeline_{kind}" for kind in TIMELINE)),
)


def _shown(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.6g}"


def loop_document(merged: dict[str, Any]) -> dict[str, Any]:
    """The month's snapshot document of the loop's values: each a ``MeanValue`` result (what
    the dashboard's panels read), made by Evidently's own calculation of the metric
    (``MeanValue(column=…).to_calculation().result(value)``) as ``Report`` makes it, without
    running the report: its ``MeanValue`` draws a plotly histogram per value (≈ 10 ms each,
    one bar of one row); shown as counters instead."""
    from evidently.core.serialization import ReportModel, SnapshotModel
    from evidently.legacy.model.widget import link_metric
    from evidently.legacy.renderers.html_widgets import CounterData, WidgetSize, counter
    from evidently.metrics import MeanValue

    results, fingerprints, values = {}, {}, loop_values(merged)
    for column, value in values.items():
        calculation = MeanValue(column=column).to_calculation()
        results[calculation.id] = calculation.result(value)
        results[calculation.id].widget = []  # shown in the rows below
        fingerprints[column] = calculation.id
    widgets = []
    for title, columns in _VALUE_ROWS:
        shown = [column for column in columns if column in values]
        if shown:
            widget = counter(title=title, size=WidgetSize.FULL,
                             counters=[CounterData(label=column.removeprefix("rows_"), value=_shown(values[column]))
                                       for column in shown])
            for column in shown:
                link_metric(widget, fingerprints[column])
            widgets.append(widget)
    month = merged["month"]
    return SnapshotModel(report=ReportModel(items=[]), name=f"{month}: {merged.get('decision') or 'in progress'}",
                         timestamp=month_timestamp(month), metadata=metadata(merged), tags=tags(merged),
                         metric_results=results, top_level_metrics=list(results), widgets=widgets,
                         tests_widgets=[]).dict()


def merged_document(base: dict[str, Any], loop: dict[str, Any], drift_widgets: int) -> dict[str, Any]:
    """The loop's values (``loop``, a snapshot document) over an earlier one of the month
    (``base``): its drift metrics and its first ``drift_widgets`` widgets (the drift run's)
    kept, its loop values replaced."""
    kept = {k: v for k, v in base["metric_results"].items() if not _is_loop_value(v)}
    return {**loop,
            "metric_results": {**kept, **loop["metric_results"]},
            "top_level_metrics": [m for m in base["top_level_metrics"] if m in kept] + list(loop["top_level_metrics"]),
            "widgets": list(base["widgets"][:drift_widgets]) + list(loop["widgets"])}


def record(uri: str, facts: dict[str, Any], drift_snapshot=None, replace: bool = False) -> dict[str, Any]:
    """Write the month's snapshot: ``facts`` over what an earlier step recorded (``replace``:
    start afresh, as a new run of the month does), with the drift run's metrics when given,
    else those already stored. Returns the merged facts."""
    state = ensure_project(uri)
    month = facts["month"]
    before, stored = ({}, None) if replace else _stored_facts(state, month)
    merged = {**before, **{k: v for k, v in facts.items() if v is not None},
              "recorded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    document = loop_document(merged)
    if drift_snapshot is not None:  # the drift run's metrics and widgets go into the month's entry
        base = drift_snapshot.to_snapshot_model().dict()
        merged["drift_widgets"] = len(base["widgets"])
        document = merged_document(base, {**document, "metadata": metadata(merged)}, merged["drift_widgets"])
    elif stored is not None:  # and stay there when a later step adds its facts
        document = merged_document(stored, document, int(merged.get("drift_widgets") or 0))
    state.write_document(project_id(), snapshot_id(month), document)
    return merged


def record_safely(bucket: str, facts: dict[str, Any], drift_snapshot=None, replace: bool = False) -> None:
    """``record``, logged and swallowed on failure: the dashboard must not fail a month."""
    uri = workspace_uri(bucket)
    try:
        record(uri, facts, drift_snapshot, replace=replace)
        logger.info(f"monitoring snapshot recorded: month={facts['month']} decision={facts.get('decision')} "
                    f"workspace={uri}")
    except Exception as exc:  # noqa: BLE001 - monitoring is a view of the loop, never its cause of failure
        logger.warning(f"MONITORING_NOT_RECORDED month={facts.get('month')} workspace={uri}: "
                       f"{type(exc).__name__}: {exc}")


def rejection_facts(report: dict[str, Any]) -> dict[str, Any]:
    """A ``_REJECTION.json`` as the facts of a rejected month's entry."""
    return {"month": report["month"], "decision": f"rejected_{report.get('stage') or 'validate'}",
            "stage": report.get("stage"), "execution": report.get("execution"),
            "rejected_at": report.get("rejected_at"), "message": (report.get("message") or "")[:500]}


def approval_rejection_facts(decided: dict[str, Any]) -> dict[str, Any]:
    """A refused promotion (``approvals/decided/<m>.json``) as the last facts of its month: the
    drift and comparison recorded before stay, the decision becomes rejected (or timed out)."""
    return {"month": decided["month"], "decision": decided.get("decision") or "rejected",
            "rejected_by": decided.get("by"), "rejected_reason": (decided.get("reason") or "")[:500],
            "rejected_at": decided.get("rejected_at")}


def _when(stamp: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return None


def _already_shown(before: dict[str, Any] | None, facts: dict[str, Any]) -> bool:
    """The month's entry says this already (the same decision of the same moment), or was
    written after it (the month ran again since)."""
    if not before:
        return False
    if before.get("decision") == facts["decision"] and before.get("rejected_at") == facts.get("rejected_at"):
        return True
    recorded, rejected = _when(before.get("recorded_at")), _when(facts.get("rejected_at"))
    return recorded is not None and (rejected is None or recorded > rejected)


def sync_rejections(uri: str, bucket: str) -> list[str]:
    """Add to the timeline what the loop's zip functions cannot write themselves: each
    quarantined month (its newest ``quarantine/<m>/<attempt>/_REJECTION.json``, the entry
    replaced) and each refused promotion (``approvals/decided/<m>.json``, merged into the
    month's entry)."""
    from . import storage
    from .quarantine import QUARANTINE_PREFIX, newest_report_keys

    state = ensure_project(uri)
    sources = ((newest_report_keys(storage.keys(bucket, QUARANTINE_PREFIX)).values(), rejection_facts, True),
               ([key for key in storage.keys(bucket, storage.DECIDED_PREFIX) if key.endswith(".json")],
                approval_rejection_facts, False))
    added = []
    for report_keys, to_facts, replace in sources:
        for key in report_keys:
            facts = to_facts(json.loads(storage.get_bytes(bucket, key)))
            before, _ = _stored_facts(state, facts["month"])
            if _already_shown(before, facts):
                continue
            record(uri, facts, replace=replace)
            added.append(facts["month"])
    return added


def drift_facts(event: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """What DetectDrift knows about the month: its rows, its drift, whether it stops here."""
    rows = (event.get("validation") or {}).get("rows") or {}
    facts: dict[str, Any] = {
        "month": event["month"], "execution": event.get("execution"),
        "drift_share": outcome.get("drift_share"), "drift_threshold": outcome.get("threshold"),
        "reference_month": outcome.get("reference_month") or "none",
        "champion_version": outcome.get("champion_version"),
        "decision": None if outcome.get("retrain") else ("stale_month" if outcome.get("stale") else "no_retraining"),
    }
    for name, count in rows.items():
        table = name.removesuffix(".csv")
        if table in ROW_TABLES:
            facts[f"rows_{table}"] = count
    return facts


def compare_facts(event: dict[str, Any], outcome: dict[str, Any], require_approval: bool) -> dict[str, Any]:
    """What Compare measured and decided (a promotion waits for a person when required)."""
    decision = outcome.get("decision")
    if decision == "promote" and require_approval:
        decision = "awaiting_approval"
    return {"month": event["month"], "execution": event.get("execution"),
            "challenger_auc": outcome.get("new_auc"), "champion_auc": outcome.get("prod_auc"),
            "promotion_delta": outcome.get("delta"), "challenger_version": (event.get("challenger") or {}).get("version"),
            "champion_version": outcome.get("prod_version"), "decision": decision}


def promote_facts(event: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    return {"month": event["month"], "execution": event.get("execution"),
            "decision": "promote" if outcome.get("promoted") else "keep_champion",
            "production_version": outcome.get("production_version")}
