"""The monitoring view as a person looks at it, on a stack of its own: month_000 makes the
champion, month_001 replaces it, month_002 retrains but keeps it, month_003 is rejected at
ingest. `streamflow ui` then serves Evidently's UI over the bucket's workspace: its HTTP API
lists the four entries with their values, and a real headless Chromium renders the
dashboard's panels with data (the screenshot is README's docs/monitoring.png).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from streamflow.generator import build_manifest
from streamflow.schema import MANIFEST_NAME
from streamflow_local.config import StackConfig
from streamflow_local.stack_client import data_bucket, seed, upload_month, wait_for_execution
from streamflow_local.stack import deployed

from clients import aws, wait_for_rejection
from external import EXTERNAL
from month_tools import reference_mode, step_output

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(EXTERNAL, reason="starts a stack of its own on the local emulator")]
USERS = 3000
PROJECT = "StreamFlow churn"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
PANELS = ("Share of drifted columns per month", "Decision per month", "Challenger vs champion AUC",
          "Rows per month", "Drift score per numeric feature", "Drift score per categorical feature")


@pytest.fixture(scope="module")
def monitor_stack(tmp_path_factory) -> StackConfig:
    with deployed(StackConfig.on_spare_ports(state_dir=tmp_path_factory.mktemp("monitor-stack"),
                                             stack_name="sfmon")) as config:
        yield config


def _finish(stack, folder: Path) -> dict:
    """The month's summary, with what DetectDrift and Compare returned."""
    arn = upload_month(stack, folder).execution_arn
    description = wait_for_execution(stack, arn, timeout=900)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    return {**json.loads(description["output"]), "drift": step_output(stack, arn, "DetectDrift")["drift"],
            "compare": step_output(stack, arn, "Compare")["compare"]}


@pytest.fixture(scope="module")
def outcomes(monitor_stack) -> dict[str, dict]:
    """The four months' final states (month_003: its rejection report)."""
    folders = seed(monitor_stack.state_dir / "data", months=4, n_users=USERS)
    out = {folder.name: _finish(monitor_stack, folder) for folder in folders[:2]}
    with reference_mode(monitor_stack, "month_000"):  # month_002 is month_001's concept: measured against 000
        out["month_002"] = _finish(monitor_stack, folders[2])
    # month_003: a file changed after its manifest was written → rejected at ingest, quarantined
    month, bucket, s3 = "month_003", data_bucket(monitor_stack), aws(monitor_stack, "s3")
    files = {p.name: p.read_bytes() for p in sorted(folders[3].iterdir()) if p.name != MANIFEST_NAME}
    manifest = build_manifest(month, files)
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"months/{month}/{name}", Body=body.replace(b"Male", b"Mal3", 1))
    s3.put_object(Bucket=bucket, Key=f"months/{month}/{MANIFEST_NAME}", Body=json.dumps(manifest).encode())
    _, out[month] = wait_for_rejection(monitor_stack, month)
    return out


@pytest.fixture(scope="module")
def ui(monitor_stack, outcomes, tmp_path_factory):
    """`streamflow ui` as a person starts it; (its URL, what it printed)."""
    env = {**os.environ, "STREAMFLOW_STATE_DIR": str(monitor_stack.state_dir),
           "STREAMFLOW_STACK_NAME": monitor_stack.stack_name, "STREAMFLOW_AWS_PORT": str(monitor_stack.aws_port),
           "STREAMFLOW_MLFLOW_PORT": str(monitor_stack.mlflow_port), "STREAMFLOW_API_PORT": str(monitor_stack.api_port),
           "STREAMFLOW_UI_PORT": str(monitor_stack.ui_port)}
    log = tmp_path_factory.mktemp("ui") / "streamflow-ui.log"
    with log.open("w") as sink:
        process = subprocess.Popen([str(Path(sys.executable).parent / "streamflow"), "ui"], env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()
            try:  # the first answer reads the workspace from S3: slow on a busy machine
                if requests.get(f"{monitor_stack.ui_url}/api/projects", timeout=60).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        yield monitor_stack.ui_url, log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)


def _project(url: str) -> dict:
    (project,) = [p for p in requests.get(f"{url}/api/projects", timeout=30).json() if p["name"] == PROJECT]
    return project


def test_streamflow_ui_prints_both_uis(ui, monitor_stack):
    url, printed = ui
    assert f"Evidently UI {url}" in printed and f"MLflow UI {monitor_stack.mlflow_uri}" in printed
    assert "rejected months added to the timeline: month_003" in printed


def test_the_project_has_one_entry_per_month_with_what_it_measured_and_decided(ui, outcomes):
    url, _ = ui
    snapshots = requests.get(f"{url}/api/projects/{_project(url)['id']}/snapshots", timeout=30).json()
    entries = {s["metadata"]["month"]: s for s in snapshots}
    assert sorted(entries) == ["month_000", "month_001", "month_002", "month_003"] and len(snapshots) == 4
    meta = {month: entry["metadata"] for month, entry in entries.items()}

    assert [meta[m]["decision"] for m in sorted(meta)] == ["promote", "promote", "keep_champion", "rejected_ingest"]
    for month in ("month_000", "month_001", "month_002"):
        state = outcomes[month]
        assert meta[month]["execution"] == state["execution"] and month in entries[month]["tags"]
        assert float(meta[month]["challenger_auc"]) == state["compare"]["new_auc"]
        assert meta[month]["challenger_version"] == state["challenger_version"]
        assert float(meta[month]["drift_share"]) == state["drift"]["drift_share"]
        assert int(meta[month]["rows_users"]) == int(meta[month]["rows_labels"]) == USERS
        assert entries[month]["timestamp"].startswith(f"2026-0{int(month[-1]) + 1}-01")
    assert "champion_auc" not in meta["month_000"]  # no champion to compare with
    for month in ("month_001", "month_002"):
        assert float(meta[month]["champion_auc"]) == outcomes[month]["compare"]["prod_auc"]
        assert meta[month]["champion_version"] == outcomes[month]["compare"]["prod_version"]
    # kept: the challenger did not clear the champion's AUC + delta
    assert float(meta["month_002"]["challenger_auc"]) < (float(meta["month_002"]["champion_auc"])
                                                         + float(meta["month_002"]["promotion_delta"]))
    assert meta["month_003"]["stage"] == "ingest" and "sha256 differs" in meta["month_003"]["message"]


def test_the_dashboards_series_come_from_the_months(ui, outcomes):
    url, _ = ui
    project = _project(url)["id"]

    def series(metric: str, **labels: str) -> dict[str, float | None]:
        body = {"series_filter": [{"tags": [], "metadata": {}, "metric": f"evidently:metric_v2:{metric}",
                                   "metric_labels": labels}]}
        answer = requests.post(f"{url}/api/v2/snapshots/{project}/data_series_batch", json=body, timeout=30).json()
        months = [source["metadata"]["month"] for source in answer["sources"]]
        (found,) = answer["series"]
        return dict(zip(months, found["values"]))

    shares = series("DriftedColumnsCount", value_type="share")
    assert shares == {m: pytest.approx(outcomes[m]["drift"]["drift_share"], abs=1e-4) for m in ("month_001", "month_002")}
    assert series("MeanValue", column="timeline_promoted") == {"month_000": 1.0, "month_001": 1.0}
    assert series("MeanValue", column="timeline_kept") == {"month_002": 1.0}
    assert series("MeanValue", column="timeline_rejected") == {"month_003": 1.0}


def _browser() -> str | None:
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if found is None and os.environ.get("STREAMFLOW_REQUIRE_TOOLS") == "1":
        pytest.fail("no Chromium on PATH: `make browser` installs Debian's chromium")
    return found


def test_the_dashboard_renders_its_panels_with_data_in_a_real_browser(ui, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium on PATH (`make browser` installs it; `make test` does)")
    url, _ = ui
    page = f"{url}/projects/{_project(url)['id']}"
    # reduced motion: the charts draw their lines at once instead of animating them in
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-prefers-reduced-motion",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2200", "--virtual-time-budget=30000"]
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=180).stdout
    for title in PANELS:
        assert title in dom, title
    lines, marks, bars = (len(re.findall(rf'class="[^"]*{name}', dom))
                          for name in ("MuiLineElement-root", "MuiMarkElement-root", "MuiBarElement-root"))
    assert bars >= 4 + 4  # a decision bar per month, rows of three months
    assert lines >= 5 and marks >= 2 * 14  # drift share, AUC lines; a point per feature and month
    shot = tmp_path / "monitoring.png"
    subprocess.run([*flags, f"--screenshot={shot}", page], capture_output=True, timeout=180, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("STREAMFLOW_SCREENSHOT_TO"):  # README's docs/monitoring.png is refreshed this way
        shutil.copyfile(shot, os.environ["STREAMFLOW_SCREENSHOT_TO"])
