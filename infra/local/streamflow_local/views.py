"""What `streamflow report`, `models` and `status` show, as plain data (rendered by cli.py).

Everything is read through public APIs: S3 for the Evidently reports, the MLflow registry for
versions, aliases and decision tags, Step Functions for executions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamflow.quarantine import QUARANTINE_PREFIX, newest_report_keys, quarantine_prefix
from streamflow.reruns import month_of_execution
from streamflow.storage import REPORTS_PREFIX

from .config import StackConfig
from .stack_client import _client, data_bucket, execution_steps, stack_description, state_machine_arn
from .map_runs import map_runs, with_map_runs
from .outcome import FAILED_STATUSES, readable_cause, shown_steps


class NothingFound(LookupError):
    """The thing asked for does not exist (yet): exit code 1."""


# ---- drift reports ----------------------------------------------------------------------

def drift_reports(config: StackConfig, month: str) -> list[dict[str, Any]]:
    """The month's Evidently reports in S3, oldest first (keys carry a UTC timestamp)."""
    s3 = _client(config, "s3")
    bucket = data_bucket(config)
    prefix = f"{REPORTS_PREFIX}drift_{month}_"
    found = [obj for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
             for obj in page.get("Contents", []) if obj["Key"].endswith(".html")]
    return sorted(found, key=lambda obj: (obj["LastModified"], obj["Key"]))


def download_report(config: StackConfig, month: str, out_dir: Path) -> Path:
    """Download the month's newest drift report into ``out_dir``; returns its path."""
    reports = drift_reports(config, month)
    if not reports:
        raise NothingFound(f"no drift report for {month} in s3://{data_bucket(config)}/{REPORTS_PREFIX}")
    key = reports[-1]["Key"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / Path(key).name
    _client(config, "s3").download_file(data_bucket(config), key, str(target))
    return target.resolve()


# ---- model versions ---------------------------------------------------------------------

@dataclass
class VersionRow:
    version: str
    aliases: list[str]
    month: str
    val_auc: float | None
    decision: str
    execution: str
    created: str
    # (month, AUC, how it was measured): its own validation AUC, then every later Compare
    # that scored it as the champion against a challenger on that month's held-out users.
    history: list[tuple[str, float, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "aliases": self.aliases, "month": self.month, "val_auc": self.val_auc,
                "decision": self.decision, "execution": self.execution, "created": self.created,
                "auc_history": [{"month": m, "auc": a, "as": how} for m, a, how in self.history]}


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def model_name(config: StackConfig) -> str:
    return stack_description(config).get("parameters", {}).get("ModelName", "streamflow_churn")


def model_versions(config: StackConfig) -> tuple[str, list[VersionRow]]:
    """Every registered version of the stack's model, newest last, with its AUC history."""
    from datetime import datetime, timezone

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name = model_name(config)
    client = MlflowClient(tracking_uri=config.mlflow_uri, registry_uri=config.mlflow_uri)
    try:
        aliases = client.get_registered_model(name).aliases or {}
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower():
            return name, []
        raise
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    rows: dict[str, VersionRow] = {}
    for v in versions:
        tags = v.tags or {}
        created = datetime.fromtimestamp(v.creation_timestamp / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        row = VersionRow(version=str(v.version), aliases=sorted(by_version.get(str(v.version), [])),
                         month=tags.get("month", ""), val_auc=_float(tags.get("val_auc")),
                         decision=tags.get("decision", ""), execution=tags.get("execution", ""), created=created)
        if row.val_auc is not None:
            row.history.append((row.month, row.val_auc, "trained"))
        rows[row.version] = row
    for v in versions:  # a challenger's Compare also scored the champion of the day
        tags = v.tags or {}
        champion, auc = tags.get("decision_prod_version"), _float(tags.get("decision_prod_auc"))
        if champion in rows and auc is not None and champion != str(v.version):
            rows[champion].history.append((tags.get("month", ""), auc, f"champion vs v{v.version}"))
    return name, list(rows.values())


# ---- executions -------------------------------------------------------------------------

def _interruption(sfn: Any, execution: dict[str, Any]) -> dict[str, Any]:
    """``interrupted`` (and its cause) for an execution a stop or crash of the local stack
    cut short (persistence.py restores it ABORTED with a marker error)."""
    from .resume import is_interrupted

    if execution["status"] != "ABORTED":
        return {"interrupted": False}
    description = sfn.describe_execution(executionArn=execution["executionArn"])
    if not is_interrupted(description):
        return {"interrupted": False}
    return {"interrupted": True, "cause": description.get("cause", "")}


def in_month_order(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Executions by month number (``month_NNN``), then by start: the order months decide in."""
    from streamflow.schema import month_index

    def key(execution: dict[str, Any]) -> tuple[int, str]:
        try:
            number = month_index(execution["month"])
        except ValueError:
            number = 10**9  # not a month name: last
        return number, execution["started"]

    return sorted(found, key=key)


WAITING_STATE = "AwaitEarlierMonths"


def month_decision(status: str, output: dict[str, Any] | None) -> str | None:
    """The month's decision as its [SUMMARY] output says (None while it runs or if it failed)."""
    if status != "SUCCEEDED" or not output:
        return None
    if output.get("decision"):
        return str(output["decision"])
    if output.get("promoted"):
        return "promote"
    return "keep_champion" if output.get("retrained") else "no_retraining"


def waiting_for(config: StackConfig, execution: dict[str, Any]) -> list[str]:
    """The earlier months a running execution waits for, when it is parked at AwaitEarlierMonths."""
    steps = execution.get("steps") or []
    if execution.get("status") != "RUNNING" or not steps or steps[-1]["state"] != WAITING_STATE \
            or steps[-1]["status"] != "RUNNING":
        return []
    table = stack_description(config).get("outputs", {}).get("MonthOrderTableName")
    if not table:
        return []
    from streamflow.ordering import InFlight, blocking

    dynamodb = _client(config, "dynamodb")
    items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
             for item in page.get("Items", []) if item.get("entry", {}).get("S", "").startswith("execution#")]
    in_flight = [InFlight(execution=i["execution"]["S"], month=i["month"]["S"]) for i in items]
    return [b.month for b in blocking(execution["month"], execution["name"], in_flight)]


def executions(config: StackConfig, month: str | None = None) -> list[dict[str, Any]]:
    """The state machine's executions in month order, each with its steps, its decision and,
    while it waits for earlier months to decide, which ones."""
    sfn = _client(config, "stepfunctions")
    listed = [e for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn(config))
              for e in page["executions"]]
    if month:
        listed = [e for e in listed if e["name"].startswith(month + "-")]
    result = []
    for execution in sorted(listed, key=lambda e: e["startDate"]):
        stop = execution.get("stopDate")
        output = None
        if execution["status"] == "SUCCEEDED":
            output = json.loads(sfn.describe_execution(executionArn=execution["executionArn"]).get("output") or "{}")
        row = {
            **_interruption(sfn, execution),
            "name": execution["name"],
            "month": month_of_execution(execution["name"]),
            "status": execution["status"],
            "started": execution["startDate"].isoformat(timespec="seconds"),
            "seconds": (stop - execution["startDate"]).total_seconds() if stop else None,
            "steps": with_map_runs([{"state": s["state"], "status": s["status"], "seconds": s["seconds"]}
                                    for s in shown_steps(execution_steps(config, execution["executionArn"]))],
                                   map_runs(sfn, execution["executionArn"])),
            "decision": month_decision(execution["status"], output),
        }
        if execution["status"] in FAILED_STATUSES:
            row.update(failure(config, execution["executionArn"]))
        row["waiting_for"] = waiting_for(config, row)
        result.append(row)
    return in_month_order(result)


def failure(config: StackConfig, execution_arn: str) -> dict[str, str]:
    """A failed execution's error and its cause on one line."""
    description = _client(config, "stepfunctions").describe_execution(executionArn=execution_arn)
    return {"error": description.get("error", ""), "cause": readable_cause(description.get("cause"))}


def rejection_reports(config: StackConfig, month: str | None = None) -> dict[str, dict[str, Any]]:
    """``{month: its newest _REJECTION.json}`` of the quarantined months (or of ``month``
    alone); each report's ``report`` is its ``s3://`` address."""
    import json

    s3 = _client(config, "s3")
    bucket = data_bucket(config)
    prefix = quarantine_prefix(month) if month else QUARANTINE_PREFIX
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    found: dict[str, dict[str, Any]] = {}
    for quarantined, key in newest_report_keys(obj["Key"] for page in pages for obj in page.get("Contents", [])).items():
        try:
            report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            continue
        found[quarantined] = {**report, "report": f"s3://{bucket}/{key}"}
    return found


def ingest_rejection_since(config: StackConfig, month: str, since: Any) -> dict[str, Any] | None:
    """An execution-like answer for a month rejected at ingest after ``since`` (a datetime),
    else None: what `upload` waits for besides an execution."""
    from datetime import datetime

    report = rejection_reports(config, month).get(month)
    if not report or report.get("stage") != "ingest":
        return None
    if datetime.fromisoformat(report["rejected_at"]) < since.replace(microsecond=0):
        return None
    return {"status": "REJECTED", "error": "RejectedAtIngest",
            "cause": f"{ingest_hint(report['report'])}: {readable_cause(report.get('message', ''))}"}


def ingest_hint(report_uri: str) -> str:
    return f"rejected at ingest, see {report_uri}"
