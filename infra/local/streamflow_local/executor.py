"""Run moto's Lambda functions as local processes instead of Docker containers.

moto hands every invocation (direct Invoke, Step Functions tasks, S3 notifications) to
``LambdaFunction._invoke_lambda``. ``install`` replaces that method with
``LocalExecutor.invoke``, which runs the function's real handler from the code and layers
that were deployed (unzipped into the state folder), with the function's environment, in
a warm worker process per function configuration:

* cold start on the first call, or after the function's code or configuration changed
  (the old workers finish their in-flight request and are then retired);
* one worker per concurrent request, reused while warm (the most recently used first, so
  the surplus of a burst is the part left to idle);
* idle workers are stopped as Lambda reclaims idle environments (``reaper.py``): one idle
  for longer than ``StackConfig.worker_idle_s`` (default 300 s), and, while the machine's
  available memory is under ``StackConfig.memory_floor_mb`` (default the larger of 2 GiB
  and 10 % of it), idle ones largest first; checked by a reaper thread every few seconds
  and before each cold start, never a worker in flight, each stop a ``worker-reaped`` line
  in the stack's log. The next call of that function cold-starts;
* the function's Timeout is enforced: a late worker is killed and the call fails with
  ``States.Timeout``-style "Task timed out" like Lambda;
* OpenMP/BLAS threads are limited to the vCPUs the function's memory buys on Lambda
  (``cpu_share.py``), so workers sharing a laptop's cores do not spin against each other.

Workers run this virtual environment's Python: it plays the deps layer of the zip
functions and the pip install of the image functions' Dockerfiles (``requirements.txt``
includes all of them); the import guard (``packages.py``) keeps each worker to the
modules its own package installs.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import select
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import reaper
from .config import StackConfig
from .cpu_share import thread_limits

# A moto internal: moto is pinned in constraints.txt so this name cannot move under us.
MOTO_INVOKE_ATTRIBUTE = "_invoke_lambda"
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# Lambda's init phase is 10 s; an init that runs past it is started again inside the first
# invoke, and that second init plus the handler must fit the function's timeout. Here the one
# init runs on instead of starting over, and may take up to 10 s + the timeout before the call
# fails (the first invoke then still gets its whole timeout): more than AWS allows, on
# purpose. On AWS every cold start has its own CPU; here many share two cores (eight API
# workers starting at once under the load test), and a stricter limit fails them for the
# machine's sake, not the code's.
INIT_PHASE_S = 10.0

# How often the reaper thread looks at the idle workers: a time comparison per idle worker
# and one read of /proc/meminfo (tens of µs), so a few seconds costs nothing, and a worker
# idle past its limit or over the memory floor goes within that much of it.
REAP_INTERVAL_S = 2.0


class InvocationTimeout(Exception):
    pass


@dataclass(frozen=True)
class FunctionSpec:
    """Everything that defines an execution environment; a change means a cold start."""

    name: str
    handler: str
    timeout: float
    memory: int
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: tuple[tuple[str, str], ...]

    @functools.cached_property
    def fingerprint(self) -> str:
        # cached: the pool compares it several times per invocation (≈ 65 µs each)
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


class Worker:
    """One warm process for one FunctionSpec."""

    def __init__(self, spec: FunctionSpec, config: StackConfig):
        self.spec = spec
        log_path = config.logs_dir / f"{spec.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab", buffering=0)
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        env.update({
            "_HANDLER": spec.handler,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": config.aws_endpoint,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "PYTHONPATH": os.pathsep.join([str(spec.code_dir)] + [str(d / "python") for d in spec.layer_dirs]),
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        })
        env.update(thread_limits(spec.memory, dict(spec.environment), os.cpu_count() or 1))
        env.update(dict(spec.environment))
        self._log.write(f"INIT {spec.name} fingerprint={spec.fingerprint}\n".encode())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamflow_local.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=spec.code_dir,
            env=env,
        )
        self.init_error: dict[str, Any] | None = None
        self.init_seconds = 0.0
        started = time.monotonic()
        limit = INIT_PHASE_S + spec.timeout
        try:
            ready = self._read(started + limit)
        except InvocationTimeout:  # the process is not left behind, unknown to the pool
            self.process.kill()
            self.process.wait()
            ready = {"ready": False, "payload": {"errorMessage": f"init did not finish in {limit:g} s",
                                                 "errorType": "Runtime.InitTimeout"}}
        self.init_seconds = time.monotonic() - started
        # When its last invocation ended (monotonic): what the reaper measures idleness by.
        self.last_used = time.monotonic()
        if not ready.get("ready"):
            self.init_error = ready.get("payload") or {"errorMessage": "worker died during init",
                                                       "errorType": "Runtime.ExitError"}

    def _read(self, deadline: float) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([stdout], [], [], remaining)[0]:
            raise InvocationTimeout()
        line = stdout.readline()
        if not line:
            code = self.process.wait()
            return {"ok": False, "payload": {"errorMessage": f"worker exited with code {code}",
                                             "errorType": "Runtime.ExitError"}}
        return json.loads(line)

    def invoke(self, event: Any) -> dict[str, Any]:
        if self.init_error:
            return {"ok": False, "payload": self.init_error}
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(event) + "\n").encode())
        self.process.stdin.flush()
        return self._read(time.monotonic() + self.spec.timeout)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and self.init_error is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


class LocalExecutor:
    """Pools of warm workers, one pool per function, keyed by configuration fingerprint.

    ``available_memory`` (bytes, or None when unknown) and ``log`` (one line to the stack's
    log) are parameters so that tests can make memory "low" and read what was reaped."""

    def __init__(self, config: StackConfig, *,
                 available_memory: Callable[[], int | None] = reaper.available_memory,
                 log: Callable[[str], None] | None = None,
                 reap_interval_s: float = REAP_INTERVAL_S):
        self.config = config
        self._lock = threading.Lock()
        self._idle: dict[str, list[Worker]] = {}
        self._current: dict[str, str] = {}
        self.cold_starts: dict[str, int] = {}
        # id(zip bytes) → (those bytes, their folder): every invocation builds its spec from
        # moto's function, and hashing the code and layer zips again each time cost ≈ 0.3 ms
        # of the stack's one interpreter per /predict. The bytes are kept, so the id cannot
        # be reused; moto replaces the object when code changes.
        self._unzipped: dict[int, tuple[bytes, Path]] = {}
        floor_mb = config.memory_floor_mb
        floor = reaper.default_floor(reaper.total_memory()) if floor_mb is None else max(0, floor_mb) * reaper.MIB
        self.limits = reaper.Limits(idle_s=max(0.0, config.worker_idle_s), floor=floor)
        self._available_memory = available_memory
        self._log_line = log or _print_line
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None
        if self.limits.idle_s > 0 or self.limits.floor > 0:
            self._reaper = threading.Thread(target=self._reap_loop, args=(reap_interval_s,),
                                            name="worker-reaper", daemon=True)
            self._reaper.start()

    # --- code and layers ---------------------------------------------------------------
    def _unzip(self, kind: str, code: bytes) -> Path:
        known = self._unzipped.get(id(code))
        if known is not None and known[0] is code and known[1].exists():
            return known[1]
        target = self._unzip_new(kind, code)
        self._unzipped[id(code)] = (code, target)
        return target

    def _unzip_new(self, kind: str, code: bytes) -> Path:
        target = self.config.state_dir / "lambda" / kind / hashlib.sha256(code).hexdigest()[:24]
        if not target.exists():
            tmp = target.with_name(target.name + f".tmp{os.getpid()}{threading.get_ident()}")
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(tmp)
            try:
                tmp.rename(target)
            except OSError:  # another thread won the race; both trees are identical
                pass
        return target

    def spec_for(self, fn: Any) -> FunctionSpec:
        from moto.awslambda.utils import get_backend

        backend = get_backend(fn.account_id, fn.region)
        layer_dirs = []
        for layer in fn.layers:
            version = backend.layers_versions_by_arn(layer["Arn"])
            layer_dirs.append(self._unzip("layers", version.code_bytes))
        return FunctionSpec(
            name=fn.function_name,
            handler=fn.handler,
            timeout=float(fn.timeout),
            memory=int(fn.memory_size),
            code_dir=self._unzip("code", fn.code_bytes),
            layer_dirs=tuple(layer_dirs),
            environment=tuple(sorted((k, str(v)) for k, v in (fn.environment_vars or {}).items())),
        )

    # --- pool --------------------------------------------------------------------------
    def _acquire(self, spec: FunctionSpec) -> Worker:
        retired: list[Worker] = []
        with self._lock:
            self._current[spec.name] = spec.fingerprint
            idle = self._idle.setdefault(spec.name, [])
            keep = [w for w in idle if w.spec.fingerprint == spec.fingerprint and w.alive]
            retired = [w for w in idle if w not in keep]
            worker = keep.pop() if keep else None
            self._idle[spec.name] = keep
        for old in retired:
            old.stop()
        if worker is None:
            self.reap()  # a cold start needs memory: make room first, as Lambda would
            worker = Worker(spec, self.config)
            with self._lock:
                self.cold_starts[spec.name] = self.cold_starts.get(spec.name, 0) + 1
        return worker

    def _release(self, worker: Worker) -> None:
        worker.last_used = time.monotonic()  # the hot path's one addition: no /proc reads here
        with self._lock:
            if worker.alive and self._current.get(worker.spec.name) == worker.spec.fingerprint:
                self._idle.setdefault(worker.spec.name, []).append(worker)
                return
        worker.stop()

    def invoke(self, fn: Any, event: Any) -> tuple[str, bool, str]:
        """moto's contract: (response payload, errored, log tail)."""
        return self.invoke_spec(self.spec_for(fn), event)

    def invoke_spec(self, spec: FunctionSpec, event: Any) -> tuple[str, bool, str]:
        """``invoke`` for a spec already built (tests build one without moto)."""
        worker = self._acquire(spec)
        try:
            answer = worker.invoke(event)
        except InvocationTimeout:
            worker.stop()
            payload = {"errorMessage": f"Task timed out after {spec.timeout:.2f} seconds",
                       "errorType": "Sandbox.Timedout"}
            return json.dumps(payload), True, ""
        except Exception as exc:  # broken pipe, bad JSON: the environment is gone
            worker.stop()
            payload = {"errorMessage": f"execution environment failed: {exc}", "errorType": "Runtime.ExitError"}
            return json.dumps(payload), True, ""
        self._release(worker)
        return json.dumps(answer.get("payload")), not answer.get("ok", False), ""

    def invoke_function(self, name: str, event: Any) -> tuple[str, bool]:
        """Invoke a deployed function by name, as API Gateway's Lambda integration does:
        straight to the execution environment, without a Lambda ``Invoke`` API call (which
        in the emulator is an HTTP round trip through moto: ≈3 ms of a /predict).
        Returns (response payload, errored)."""
        from moto.awslambda.models import lambda_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        function = lambda_backends[DEFAULT_ACCOUNT_ID][self.config.region].get_function(name)
        payload, errored, _ = self.invoke(function, event)
        return payload, errored

    # --- reaping idle workers ---------------------------------------------------------
    def reap(self) -> list[tuple[Worker, reaper.Reason]]:
        """Stop the idle workers ``reaper.choose`` picks; returns them with their reasons.

        Cheap when there is nothing to do: one time comparison per idle worker and (with a
        memory floor) one read of /proc/meminfo; each worker's RSS is read only when a worker
        is past its idle limit or memory is low. A worker is stopped only if it is still idle
        and unused since it was looked at: one taken by an invocation meanwhile stays."""
        with self._lock:  # each worker with its last use as of now: the round acts on this look
            idle = [(w, w.last_used) for pool in self._idle.values() for w in pool]
        if not idle:
            return []
        now = time.monotonic()
        limits = self.limits
        available = self._available_memory() if limits.floor > 0 else None
        low = available is not None and available < limits.floor
        if not low and not (limits.idle_s > 0 and any(now - last_used > limits.idle_s for _, last_used in idle)):
            return []
        seen = {id(w): (w, last_used, reaper.rss(w.process.pid)) for w, last_used in idle}
        states = [reaper.WorkerState(key, last_used, size) for key, (_, last_used, size) in seen.items()]
        stopped: list[tuple[Worker, reaper.Reason]] = []
        with self._lock:
            for key, reason in reaper.choose(states, now, limits, available):
                worker, last_used, _ = seen[key]
                pool = self._idle.get(worker.spec.name, [])
                if worker.last_used == last_used and any(w is worker for w in pool):
                    pool.remove(worker)
                    stopped.append((worker, reason))
        for worker, reason in stopped:
            _, last_used, size = seen[id(worker)]
            memory = (f" available_mb={available / reaper.MIB:.0f} floor_mb={limits.floor / reaper.MIB:.0f}"
                      if reason == "memory" and available is not None else "")
            self._log_line(f"worker-reaped function={worker.spec.name} pid={worker.process.pid} "
                           f"idle_s={now - last_used:.1f} rss_mb={size / reaper.MIB:.0f} reason={reason}{memory}")
            worker.stop()
        return stopped

    def _reap_loop(self, interval_s: float) -> None:
        """The reaper thread: an idle stack sheds its workers with no invocation arriving."""
        while not self._stopping.wait(interval_s):
            try:
                self.reap()
            except Exception as exc:  # the thread must outlive one bad round (a worker gone oddly)
                self._log_line(f"worker-reaper round failed: {exc!r}")

    def shutdown(self) -> None:
        self._stopping.set()
        if self._reaper is not None:
            self._reaper.join(timeout=10)
        with self._lock:
            workers = [w for pool in self._idle.values() for w in pool]
            self._idle.clear()
        for worker in workers:
            worker.stop()


def _print_line(line: str) -> None:
    """The stack's log is the ``serve`` process's stdout (``stack.py``)."""
    print(line, flush=True)


def install(executor: LocalExecutor) -> None:
    """Route moto's Lambda invocations to the local executor."""
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return executor.invoke(self, event if event is not None else {})

    setattr(LambdaFunction, MOTO_INVOKE_ATTRIBUTE, _invoke_lambda)
