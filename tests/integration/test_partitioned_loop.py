"""A partitioned month through the real loop: the same rows uploaded as parts
(``<table>/part-00000.csv`` …, several at a time, the manifest listing every part) decide
what they decide uploaded whole; a bad part is rejected with the part, column and rule
named in the quarantine report.

The partitioned months go through a stack of their own (whole month_000 as its champion,
then month_001 in parts); the whole-month decision is the session stack's month_001 run
against its month_000 champion (test_loop's, or uploaded here when run alone).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clients import wait_for_rejection
from external import EXTERNAL
from month_tools import step_output
from streamflow.manifest import manifest_for_folder
from streamflow.partitioned_month import part_bounds
from streamflow.parts import part_name
from streamflow.schema import MANIFEST_NAME, MONTH_FILES
from streamflow_local.config import StackConfig
from streamflow_local.stack import deployed
from streamflow_local.stack_client import recorded_execution, upload_month, wait_for_execution

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(EXTERNAL, reason="starts a stack of its own on the local emulator")]
PARTS = 3
DECISION_KEYS = ("month", "drift_share", "retrained", "promoted", "decision", "reference_month")


def write_parts(whole: Path, out: Path, parts: int = PARTS, edit=None) -> Path:
    """The whole month's rows as ``parts`` parts a table, with the manifest of the parts."""
    folder = out / whole.name
    for table in MONTH_FILES:
        header, *rows = (whole / table).read_text().splitlines(keepends=True)
        for index, (start, end) in enumerate(part_bounds(len(rows), parts)):
            path = folder / part_name(table, index)
            path.parent.mkdir(parents=True, exist_ok=True)
            chunk = rows[start:end]
            if edit is not None:
                chunk = edit(part_name(table, index), header, chunk)
            path.write_text(header + "".join(chunk))
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest_for_folder(folder), indent=2))
    return folder


def negative_watch_hours(part: str, bad_users: list[str] | None = None):
    """A ``write_parts`` edit that breaks one rule in one place: the third row of ``part``
    gets a negative ``watch_hours_30d`` (the row's user is appended to ``bad_users``)."""
    def edit(name: str, header: str, rows: list[str]) -> list[str]:
        if name != part:
            return rows
        columns = header.strip().split(",")
        cells = rows[2].rstrip("\n").split(",")
        cells[columns.index("watch_hours_30d")] = "-1.5"
        if bad_users is not None:
            bad_users.append(cells[columns.index("user_id")])
        return rows[:2] + [",".join(cells) + "\n"] + rows[3:]
    return edit


@pytest.fixture(scope="module")
def parts_stack(tmp_path_factory) -> StackConfig:
    with deployed(StackConfig.on_spare_ports(state_dir=tmp_path_factory.mktemp("parts-stack"),
                                             stack_name="sfparts")) as config:
        yield config


def _finished(stack: StackConfig, folder: Path) -> dict:
    """The execution of this folder's data on ``stack``: the one recorded, else a new upload."""
    description = recorded_execution(stack, folder)
    arn = description["executionArn"] if description else upload_month(stack, folder).execution_arn
    return wait_for_execution(stack, arn, timeout=900)


def _decision(stack: StackConfig, description: dict) -> dict:
    assert description["status"] == "SUCCEEDED", description.get("cause")
    summary = json.loads(description["output"])
    compare = (step_output(stack, description["executionArn"], "Compare") or {}).get("compare") or {}
    validation = (step_output(stack, description["executionArn"], "Validate") or {}).get("validation") or {}
    return {**{k: summary.get(k) for k in DECISION_KEYS},
            "auc": {k: compare.get(k) for k in ("new_auc", "prod_auc", "delta")},
            "rows": validation.get("rows")}


def test_a_partitioned_month_decides_as_the_whole_month(stack, months, parts_stack, tmp_path):
    progress: list[str] = []
    assert _finished(parts_stack, months[0])["status"] == "SUCCEEDED"  # the same champion as the session stack's
    folder = write_parts(months[1], tmp_path)
    upload = upload_month(parts_stack, folder, progress=progress.append)
    assert progress[-1] == f"upload {MANIFEST_NAME}" and len(progress) == PARTS * len(MONTH_FILES) + 1
    assert progress[-2].startswith("upload ") and f"({PARTS * len(MONTH_FILES)}/{PARTS * len(MONTH_FILES)} files" \
        in progress[-2]
    partitioned = _decision(parts_stack, wait_for_execution(parts_stack, upload.execution_arn, timeout=900))

    assert _finished(stack, months[0])["status"] == "SUCCEEDED"
    whole = _decision(stack, _finished(stack, months[1]))
    assert partitioned == whole
    assert partitioned["retrained"] is True and partitioned["rows"]["users.csv"] == 3000


def test_a_bad_part_is_rejected_naming_part_column_and_rule(parts_stack, months, tmp_path):
    bad = "usage_agg_30d/part-00001.csv"
    folder = write_parts(months[2], tmp_path, edit=negative_watch_hours(bad))
    upload = upload_month(parts_stack, folder)
    description = wait_for_execution(parts_stack, upload.execution_arn, timeout=600)
    assert description["status"] == "FAILED"
    assert description["cause"].startswith("Validate failed:") and f"{bad}:watch_hours_30d" in description["cause"]
    _, report = wait_for_rejection(parts_stack, "month_002")
    assert report["stage"] == "validate"
    assert [(v["file"], v["column"], v["rule"]) for v in report["violations"]] == [
        (bad, "watch_hours_30d", "must not be negative")]
    assert report["violations"][0]["example"].startswith("row 4 ")
    assert any(key.endswith(bad) for key in report["quarantined"])
