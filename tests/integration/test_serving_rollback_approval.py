"""Issue 3 through the real stack: the API follows every alias move without a restart,
rollback, and the optional human approval gate (approve, reject, timeout).

Runs after test_loop.py on the same stack: Production is month_001's model and Previous
month_000's when it starts.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from streamflow.generator import write_month
from streamflow_local import cli, ui
from streamflow_local.deploy import deploy
from streamflow_local.stack_client import api_headers, first_user, upload_month, wait_for_execution

from clients import MODEL, alias, monitoring_entry, registry, wait_for_json

pytestmark = pytest.mark.integration
APPROVAL_TIMEOUT = 15


@pytest.fixture
def streamflow(stack, monkeypatch):
    """Run the `streamflow` command line against the test stack; returns (exit code, output)."""
    for key, value in (("STREAMFLOW_AWS_PORT", stack.aws_port), ("STREAMFLOW_MLFLOW_PORT", stack.mlflow_port),
                       ("STREAMFLOW_API_PORT", stack.api_port), ("STREAMFLOW_STATE_DIR", stack.state_dir),
                       ("STREAMFLOW_STACK_NAME", stack.stack_name)):
        monkeypatch.setenv(key, str(value))

    def run(*argv: str, capsys=None) -> int:
        return cli.main(list(argv))

    return run




def _predict(stack, user_id: str) -> requests.Response:
    return requests.post(f"{stack.api_url}/predict", json={"user_id": user_id}, headers=api_headers(stack),
                         timeout=120)


class Barrage:
    """Fire /predict requests from a few threads until stopped; keep every answer."""

    def __init__(self, stack, user_id: str, threads: int = 3):
        self.stack, self.user_id, self.threads = stack, user_id, threads
        self.answers: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(threads)

    def _loop(self) -> None:
        while not self._stop.is_set():
            response = _predict(self.stack, self.user_id)
            version = response.json().get("model_version") if response.status_code == 200 else response.text
            self.answers.append((response.status_code, version))

    def __enter__(self) -> "Barrage":
        for _ in range(self.threads):
            self._pool.submit(self._loop)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)


def test_rollback_moves_production_back_and_the_api_follows_at_once(stack, months, streamflow):
    production, previous = alias(stack, "Production"), alias(stack, "Previous")
    assert production and previous and production != previous
    user_id = first_user(months[1])
    assert _predict(stack, user_id).json()["model_version"] == production
    with Barrage(stack, user_id) as barrage:
        time.sleep(1.0)
        assert streamflow("rollback", "--reason", "test: bad champion") == 0
        after = _predict(stack, user_id)
        time.sleep(1.0)
    assert after.status_code == 200 and after.json()["model_version"] == previous
    assert alias(stack, "Production") == previous and alias(stack, "Previous") is None
    assert barrage.answers, "requests were fired during the switch"
    assert all(status == 200 for status, _ in barrage.answers), barrage.answers
    assert {version for _, version in barrage.answers} <= {production, previous}
    history = json.loads(registry(stack).get_model_version(MODEL, previous).tags["alias_history"])
    assert history[-1]["alias"] == "Production" and history[-1]["action"] == "set"
    assert "rollback: test: bad champion" == history[-1]["reason"] and history[-1]["rolled_back_from"] == production
    demoted = registry(stack).get_model_version(MODEL, production).tags
    assert demoted["production"].startswith("removed ") and ": rollback: test: bad champion" in demoted["production"]
    entry = monitoring_entry(stack, demoted["month"])  # the dashboard's timeline shows it
    assert entry["decision"] == "rolled_back" and entry["production_version"] == previous


def test_rollback_with_nothing_to_roll_back_to_refuses(stack, streamflow, capsys):
    production = alias(stack, "Production")
    assert streamflow("rollback") == 1
    assert "nothing to roll back to" in capsys.readouterr().err
    assert alias(stack, "Production") == production


@pytest.fixture(scope="module")
def approval_stack(stack):
    """The same stack redeployed with RequireApproval=true and a short approval timeout."""
    deploy(stack, {"RequireApproval": "true", "ApprovalTimeoutSeconds": str(APPROVAL_TIMEOUT)})
    yield stack
    deploy(stack)


def _start_month(stack, index: int):
    folder = write_month(stack.state_dir / "data", index, n_users=3000)
    return upload_month(stack, folder)


def _wait_for_pending_approval(stack, month: str) -> dict:
    return wait_for_json(stack, f"approvals/{month}.json")


def test_rejected_challenger_stays_out_of_production(approval_stack, streamflow):
    stack = approval_stack
    champion = alias(stack, "Production")
    upload = _start_month(stack, 4)
    pending = _wait_for_pending_approval(stack, "month_004")
    assert alias(stack, "Staging") == pending["challenger_version"]
    assert streamflow("reject", "month_004", "--reason", "holiday season, hold") == 0
    description = wait_for_execution(stack, upload.execution_arn)
    summary = json.loads(description["output"])
    assert description["status"] == "SUCCEEDED"
    assert summary["approval"] == "rejected" and summary["promoted"] is False
    assert alias(stack, "Production") == champion and alias(stack, "Staging") is None
    tags = registry(stack).get_model_version(MODEL, pending["challenger_version"]).tags
    assert tags["decision"] == "rejected" and tags["rejected_reason"] == "holiday season, hold"
    assert streamflow("approve", "month_004") == 1  # nothing pending any more
    entry = monitoring_entry(stack, "month_004")
    assert entry["decision"] == "rejected" and entry["challenger_version"] == pending["challenger_version"]


def test_unanswered_approval_times_out_as_a_rejection(approval_stack):
    stack = approval_stack
    champion = alias(stack, "Production")
    upload = _start_month(stack, 5)
    pending = _wait_for_pending_approval(stack, "month_005")
    description = wait_for_execution(stack, upload.execution_arn, timeout=APPROVAL_TIMEOUT + 120)
    summary = json.loads(description["output"])
    assert summary["approval"] == "timed_out" and summary["promoted"] is False
    assert alias(stack, "Production") == champion
    tags = registry(stack).get_model_version(MODEL, pending["challenger_version"]).tags
    assert tags["decision"] == "rejected_timeout"
    decided = wait_for_json(stack, "approvals/decided/month_005.json")
    assert decided["decision"] == "rejected_timeout" and decided["challenger_version"] == pending["challenger_version"]
    assert monitoring_entry(stack, "month_005")["decision"] == "awaiting_approval"  # nobody ran a command
    _, added = ui.prepare(stack)  # what `streamflow ui` does before it serves
    assert "month_005" in added
    entry = monitoring_entry(stack, "month_005")
    assert entry["decision"] == "rejected_timeout" and entry["rejected_by"] == "timeout"


def test_approved_challenger_is_promoted_and_served_by_the_very_next_request(approval_stack, months, streamflow):
    stack = approval_stack
    champion = alias(stack, "Production")
    user_id = first_user(months[1])
    upload = _start_month(stack, 6)
    pending = _wait_for_pending_approval(stack, "month_006")
    challenger = pending["challenger_version"]
    assert alias(stack, "Production") == champion  # nothing moves before a human says so
    with Barrage(stack, user_id) as barrage:
        assert streamflow("approve", "month_006") == 0
        description = wait_for_execution(stack, upload.execution_arn)
        very_next = _predict(stack, user_id)
    summary = json.loads(description["output"])
    assert summary["approval"] == "approved" and summary["promoted"] is True
    assert alias(stack, "Production") == challenger and alias(stack, "Previous") == champion
    assert very_next.status_code == 200 and very_next.json()["model_version"] == challenger
    assert all(status == 200 for status, _ in barrage.answers), barrage.answers
    assert {version for _, version in barrage.answers} <= {champion, challenger}
    history = json.loads(registry(stack).get_model_version(MODEL, challenger).tags["alias_history"])
    assert [h["alias"] for h in history] == ["Staging", "Production"]
    assert history[-1]["approved_by"] and history[-1]["execution"] == upload.execution_name
