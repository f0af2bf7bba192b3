"""A warm Lambda execution environment: one process, one function, many invocations.

Protocol (one JSON object per line): the worker writes ``{"ready": true}`` (or an init
error) after importing the handler, then for every event line it reads on stdin it writes
``{"ok": bool, "payload": ...}``. The handler's prints and logs go to stderr, which the
executor sends to the function's log file, so they never corrupt the protocol.
"""

from __future__ import annotations

import copy
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

    def __init__(self, timeout_s: float, request_id: str | None = None):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def for_request(self, timeout_s: float, request_id: str) -> LambdaContext:
        """This environment's context for one more invocation: the same function's fields
        (read from the environment once, not per request), a new id and deadline."""
        context = copy.copy(self)
        context.aws_request_id = request_id
        context._deadline = time.monotonic() + timeout_s
        return context

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _peak_rss_mb() -> int:
    """Peak resident memory of this process. ``VmHWM`` belongs to the address space made at
    exec; ``ru_maxrss`` survives exec on Linux and so would report the parent's (the stack
    server's) size at fork time."""
    try:  # one read(2), no text layer: the worker reads this after every invocation
        descriptor = os.open("/proc/self/status", os.O_RDONLY)
        try:
            status = os.read(descriptor, 65536)
        finally:
            os.close(descriptor)
        start = status.index(b"VmHWM:") + len(b"VmHWM:")
        return int(status[start:status.index(b"\n", start)].split()[0]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:],
    }


def _guard_imports() -> None:
    """``STREAMFLOW_IMPORT_GUARD=<file>`` (set by the local deploy): a top-level module that is
    neither in the standard library, nor in the function's code and layers, nor installed by
    its package (the file's ``modules``) is not found, as on Lambda, where it is not there.
    Only the path-based finder is narrowed, so ``import`` fails with ModuleNotFoundError and
    ``importlib.util.find_spec`` answers None: optional imports fail over as they do on AWS.
    A refused module that this venv has is logged once."""
    guard_file = os.environ.get("STREAMFLOW_IMPORT_GUARD")
    if not guard_file:
        return
    from importlib.machinery import PathFinder

    with open(guard_file) as handle:
        allowed = set(json.load(handle)["modules"])
    allowed |= set(sys.stdlib_module_names) | {name.split(".")[0] for name in sys.modules}
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):  # the code and the layers
        if entry and os.path.isdir(entry):
            allowed |= {name[:-3] if name.endswith(".py") else name for name in os.listdir(entry)}
    refused: set[str] = set()

    class PackagePathFinder(PathFinder):
        @classmethod
        def find_spec(cls, fullname: str, path: Any = None, target: Any = None) -> Any:
            if path is None and fullname not in allowed and not fullname.startswith("_"):
                if fullname not in refused:  # say so once, when the venv would have had it
                    refused.add(fullname)
                    if super().find_spec(fullname, path, target) is not None:
                        print(f"[import guard] {fullname!r} is not in this function's package ({guard_file})",
                              file=sys.stderr, flush=True)
                return None
            return super().find_spec(fullname, path, target)

    sys.meta_path[:] = [PackagePathFinder if finder is PathFinder else finder for finder in sys.meta_path]


def main() -> None:
    _guard_imports()
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
        error["errorType"] = "Runtime.ImportModuleError"  # one line, as Lambda's own message
        error["errorMessage"] = f"Unable to import module '{module_name}': " + " ".join(str(exc).split())[:200]
        protocol.write(json.dumps({"ready": False, "payload": error}) + "\n")
        return
    protocol.write(json.dumps({"ready": True}) + "\n")
    environment_context = LambdaContext(timeout_s)
    for line in sys.stdin:
        request_id = str(uuid.uuid4())
        print(f"START RequestId: {request_id}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            event = json.loads(line)
            context = environment_context.for_request(timeout_s, request_id)
            result = handler(event, context)
            reply = json.dumps({"ok": True, "payload": result})  # an answer JSON cannot carry is an error
        except BaseException as exc:
            traceback.print_exc()
            reply = json.dumps({"ok": False, "payload": _error(exc)}, default=str)
        duration = (time.monotonic() - started) * 1000
        # Lambda's END and REPORT lines, in one write; Max Memory Used is this environment's peak RSS.
        max_mb = _peak_rss_mb()
        print(f"END RequestId: {request_id}\nREPORT RequestId: {request_id} Duration: {duration:.1f} ms "
              f"Memory Size: {memory_mb} MB Max Memory Used: {max_mb} MB",
              file=sys.stderr, flush=True)
        protocol.write(reply + "\n")


if __name__ == "__main__":
    main()
