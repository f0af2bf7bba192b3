"""The API under load and under fuzzing, through the local API gateway over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamflow_local.stack_client import api_headers

pytestmark = pytest.mark.integration
LOAD_REQUESTS = 10_000


def test_ten_thousand_requests_without_a_server_error(stack, months, tmp_path):
    ids = tmp_path / "ids.txt"
    lines = (months[1] / "users.csv").read_text().splitlines()[1:]
    known = [line.split(",", 1)[0] for line in lines[:500]]
    ids.write_text("\n".join(known + ["0000-NOONE"]) + "\n")  # some unknown users: 404, not 5xx
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("loadgen.py")), stack.api_url,
         api_headers(stack)["x-api-key"], str(ids), str(LOAD_REQUESTS), "8"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"load: {report}")
    assert report["requests"] == LOAD_REQUESTS
    server_errors = {s: n for s, n in report["statuses"].items() if not s.startswith(("2", "4"))}
    assert server_errors == {}, report
    assert report["statuses"].get("200", 0) >= LOAD_REQUESTS * 0.9


def test_schemathesis_finds_no_server_error(stack, tmp_path):
    schemathesis = Path(sys.executable).with_name("schemathesis")
    key = api_headers(stack)["x-api-key"]
    result = subprocess.run(
        [str(schemathesis), "run", f"{stack.api_url}/openapi.json", "--url", stack.api_url,
         "--checks", "not_a_server_error", "--max-examples", "60", "--header", f"x-api-key: {key}",
         "--seed", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,  # it keeps state in ./.schemathesis
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
