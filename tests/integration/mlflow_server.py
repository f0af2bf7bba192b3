"""A private ``mlflow server`` for tests that talk to a registry without the whole stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from streamflow_local.config import free_port
from streamflow_local.stack import REGISTRY_SERVER_OPTIONS, stop_process_group


@contextmanager
def plain_mlflow_server(folder: Path) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite registry, artifacts served from ``folder``), its URI.
    Served and set up as the stack's registry (``stack.REGISTRY_SERVER_OPTIONS``; no job
    runner: ``stack.registry_server_env``)."""
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_REGISTRY_URI", None)
    log = open(folder / "mlflow.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", *REGISTRY_SERVER_OPTIONS],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{uri}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, (folder / "mlflow.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield uri
    finally:
        stop_process_group(process, timeout=10)
        log.close()
