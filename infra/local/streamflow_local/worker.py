"""A warm Lambda execution environment: one process, one function, many invocations.

Protocol (one JSON object per line): the worker writes ``{"ready": true}`` (or an init
error) after importing the handler, then for every event line it reads on stdin it writes
``{"ok": bool, "payload": ...}``. The handler's prints and logs go to stderr, which the
executor sends to the function's log file, so they never corrupt the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback
import uuid
from typing import Any


class LambdaContext:
    """The attributes of AWS's context object that handlers and Powertools read."""

    def __init__(self, timeout_s: float):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _peak_rss_mb() -> int:
    """Peak resident memory of this process. ``VmHWM`` belongs to the address space made at
    exec; ``ru_maxrss`` survives exec on Linux and so would report the parent's (the stack
    server's) size at fork time."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:],
    }


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the handler's stdout joins stderr (the log file)
    sys.stdout = sys.stderr
    handler_path = os.environ["_HANDLER"]
    timeout_s = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
    memory_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    module_name, _, function_name = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except BaseException as exc:  # init errors are reported like Lambda's Runtime.* errors
        traceback.print_exc()
        error = _error(exc)
        error["errorType"] = "Runtime.ImportModuleError"
        protocol.write(json.dumps({"ready": False, "payload": error}) + "\n")
        return
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request_id = str(uuid.uuid4())
        print(f"START RequestId: {request_id}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            event = json.loads(line)
            context = LambdaContext(timeout_s)
            context.aws_request_id = request_id
            result = handler(event, context)
            answer = {"ok": True, "payload": result}
            json.dumps(answer)
        except BaseException as exc:
            traceback.print_exc()
            answer = {"ok": False, "payload": _error(exc)}
        duration = (time.monotonic() - started) * 1000
        print(f"END RequestId: {request_id}", file=sys.stderr, flush=True)
        # Lambda's REPORT line; Max Memory Used is this environment's peak RSS.
        max_mb = _peak_rss_mb()
        print(f"REPORT RequestId: {request_id} Duration: {duration:.1f} ms Memory Size: "
              f"{memory_mb} MB Max Memory Used: {max_mb} MB",
              file=sys.stderr, flush=True)
        protocol.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
