"""External mode: run the integration suite against a stack deployed elsewhere.

With ``STREAMFLOW_EXTERNAL_STACK=1`` the suite does not start the local emulator: it uses
the CloudFormation stack ``STREAMFLOW_STACK_NAME`` (default ``streamflow``) already deployed
at ``AWS_ENDPOINT_URL`` (LocalStack after ``samlocal deploy``, see the CI workflow; without
it, LocalStack's endpoint as localstack-client resolves it from ``LOCALSTACK_HOST``), the
registry at ``MLFLOW_TRACKING_URI`` and the API at ``STREAMFLOW_API_URL`` (default: the
stack's REST API through LocalStack's ``/restapis/<id>/Prod/_user_request_`` path).

It writes the same ``stack.json`` the local deploy step writes (``streamflow_local.attach``:
outputs, parameters, the API function and key), so the helpers in ``streamflow_local.stack_client``
work unchanged, and mirrors the
functions' CloudWatch log groups into ``<state>/logs/*.log`` so ``grep_logs`` finds the
``RETRAINING_TRIGGERED`` / ``[COMPARE]`` / ``[SUMMARY]`` lines there too.

Tests that need the local emulator itself (stopping its registry, patching its executor,
redeploying with the local deploy step) are skipped in this mode.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import boto3

from streamflow_local.attach import attach, localstack_api_url, localstack_endpoint
from streamflow_local.config import StackConfig

EXTERNAL = os.environ.get("STREAMFLOW_EXTERNAL_STACK") == "1"
# They stop the local MLflow server or patch the local executor's timeouts; the load test
# is sized for the local gateway's warm workers.
LOCAL_ONLY_MODULES = {"test_robustness", "test_api_under_load", "test_serving_without_registry"}
# Redeploys with other parameters through the local deploy step.
LOCAL_ONLY_FIXTURES = {"approval_stack"}
SKIP_REASON = "needs the local emulator (STREAMFLOW_EXTERNAL_STACK=1)"


def external_stack(state_dir: Path) -> StackConfig:
    config = StackConfig(state_dir=Path(state_dir), stack_name=os.environ.get("STREAMFLOW_STACK_NAME", "streamflow"),
                         aws_endpoint_url=localstack_endpoint(),
                         mlflow_url=os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"))
    description = attach(config)
    api_url = os.environ.get("STREAMFLOW_API_URL") or localstack_api_url(config, description["api"]["rest_api"])
    return dataclasses.replace(config, api_base_url=api_url)


class LogMirror:
    """Append each function's CloudWatch log events to <logs_dir>/<function>.log, every second."""

    def __init__(self, config: StackConfig, functions: dict[str, str]):
        self.config, self.functions = config, functions
        self.logs = boto3.client("logs", endpoint_url=config.aws_endpoint, region_name=config.region)
        self.since: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-mirror", daemon=True)

    def sync(self) -> None:
        for physical in self.functions.values():
            group = f"/aws/lambda/{physical}"
            start = self.since.get(group, 0)
            try:
                pages = self.logs.get_paginator("filter_log_events").paginate(logGroupName=group, startTime=start)
                events = [e for page in pages for e in page.get("events", [])]
            except self.logs.exceptions.ResourceNotFoundException:
                continue
            fresh = [e for e in events if e["timestamp"] >= start and e["eventId"] not in self._seen(group)]
            if not fresh:
                continue
            with open(self.config.logs_dir / f"{physical}.log", "a") as handle:
                for event in fresh:
                    handle.write(event["message"].rstrip("\n") + "\n")
                    self._seen(group).add(event["eventId"])
            self.since[group] = max(e["timestamp"] for e in fresh)

    def _seen(self, group: str) -> set[str]:
        return self.__dict__.setdefault("_ids", {}).setdefault(group, set())

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.sync()
            except Exception:  # a hiccup of the endpoint: try again next second
                pass

    def __enter__(self) -> "LogMirror":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class SkipLocalOnly:
    """A pytest plugin (registered by conftest.py in external mode): skip what needs the emulator."""

    def pytest_collection_modifyitems(self, session, config, items) -> None:
        import pytest

        skip = pytest.mark.skip(reason=SKIP_REASON)
        for item in items:
            if item.path.stem in LOCAL_ONLY_MODULES or LOCAL_ONLY_FIXTURES & set(getattr(item, "fixturenames", ())):
                item.add_marker(skip)
