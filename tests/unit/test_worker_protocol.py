"""The local execution environment's protocol, driven through a real worker process: each
invocation gets its own request id (the one its START/END/REPORT lines name) and deadline,
the function's fields come from its environment, an answer JSON cannot carry is the
invocation's error, and the REPORT line carries the environment's peak memory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

LOCAL = Path(__file__).resolve().parents[2] / "infra" / "local"
HANDLER = '''
import time
def handler(event, context):
    if event.get("unserialisable"):
        return {"when": object()}
    return {"id": context.aws_request_id, "name": context.function_name, "memory": context.memory_limit_in_mb,
            "arn": context.invoked_function_arn, "left_ms": context.get_remaining_time_in_millis()}
'''


def test_each_invocation_has_its_own_id_deadline_and_report(tmp_path):
    (tmp_path / "probe.py").write_text(HANDLER)
    log = tmp_path / "fn.log"
    env = {**os.environ, "_HANDLER": "probe.handler", "PYTHONPATH": os.pathsep.join([str(LOCAL), str(tmp_path)]),
           "AWS_LAMBDA_FUNCTION_NAME": "probe-fn", "AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_REGION": "eu-west-1"}
    env.pop("STREAMFLOW_IMPORT_GUARD", None)
    with open(log, "wb") as stderr:
        worker = subprocess.Popen([sys.executable, "-m", "streamflow_local.worker"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=tmp_path)
        try:
            assert json.loads(worker.stdout.readline()) == {"ready": True}
            answers = []
            for event in ({}, {}, {"unserialisable": True}):
                worker.stdin.write((json.dumps(event) + "\n").encode())
                worker.stdin.flush()
                answers.append(json.loads(worker.stdout.readline()))
        finally:
            worker.stdin.close()
            worker.wait(timeout=30)
    first, second, broken = answers
    assert first["ok"] and second["ok"]
    assert first["payload"]["id"] != second["payload"]["id"]
    for answer in (first, second):
        payload = answer["payload"]
        assert payload["name"] == "probe-fn" and payload["memory"] == 256
        assert payload["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:probe-fn"
        assert 25_000 < payload["left_ms"] <= 30_000  # a fresh deadline each time
    assert broken["ok"] is False and broken["payload"]["errorType"] == "TypeError"
    text = log.read_text()
    for answer in (first, second):
        request_id = answer["payload"]["id"]
        assert f"START RequestId: {request_id}\n" in text
        assert f"END RequestId: {request_id}\n" in text
        report = re.search(rf"^REPORT RequestId: {request_id} Duration: [\d.]+ ms Memory Size: 256 MB "
                           r"Max Memory Used: (\d+) MB$", text, re.M)
        assert report and int(report.group(1)) > 0
    assert len(re.findall(r"^REPORT RequestId: ", text, re.M)) == 3
