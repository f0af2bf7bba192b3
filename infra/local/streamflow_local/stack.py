"""Start and stop the local stack: moto (+ the local executor), the API gateway, MLflow.

``serve`` runs everything in the foreground of one process (the CLI's ``up`` starts it in
the background and waits until every part answers). The stack is durable
(``persistence.py``): moto's state is restored from ``<state>/aws`` on start and
checkpointed while it runs, the registry database stays, and so do the deploy's
description (``stack.json``, with the API key) and the logs. ``STREAMFLOW_PERSIST=0`` gives
the old in-memory stack: each start begins empty, with a fresh registry database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from .config import StackConfig


def _port_answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.RequestException:
        return False


def health(config: StackConfig) -> dict[str, bool]:
    """Which parts of the stack answer right now."""
    def ok(url: str) -> bool:
        try:
            return requests.get(url, timeout=2).status_code < 500
        except requests.RequestException:
            return False

    return {
        "aws": ok(f"{config.aws_endpoint}/moto-api/"),
        "mlflow": ok(f"{config.mlflow_uri}/health"),
        "api_gateway": _port_answers(config.api_url),
    }


def _registry_hold_file(config: StackConfig) -> Path:
    return config.state_dir / "mlflow.hold"


def hold_registry(config: StackConfig) -> None:
    """Stop the MLflow server and keep it down (to rehearse a registry outage)."""
    _registry_hold_file(config).touch()
    try:
        os.killpg(int((config.state_dir / "mlflow.pid").read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def release_registry(config: StackConfig, timeout: float = 120.0) -> None:
    """Let the stack start the MLflow server again (same database) and wait for it."""
    _registry_hold_file(config).unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    while not health(config)["mlflow"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the MLflow server did not come back")
        time.sleep(0.5)


def registry_server_env(config: StackConfig) -> dict[str, str]:
    """The ``mlflow server``'s environment: artifacts in the emulator's S3, and no job runner.

    MLflow 3's server starts a job runner by default (huey consumers for its GenAI jobs:
    scorers, prompt optimisation, trace roll-ups), eight more processes that each import
    MLflow and poll while the stack runs. The registry runs no such job, so it is off
    (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``) unless the environment turns it on: the
    server then starts in about half the time and keeps two processes instead of ten."""
    env = {**os.environ, **config.client_env(), "MLFLOW_S3_ENDPOINT_URL": config.aws_endpoint}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_REGISTRY_URI", None)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


# MLflow's Flask app under gunicorn, not its default FastAPI app under uvicorn: the same
# REST API and UI, ≈ 2 ms less a call (a version-tag write 7.9–10.9 ms against 9.4–13.4 ms, a
# read 4.8–6.3 ms against 6.1–12.5 ms, alternated; bench/README.md §1f), and a promoting
# month makes ≈ 50 calls. The FastAPI app adds only MLflow's GenAI endpoints (trace
# ingestion, jobs), which the registry does not use. A request may take as long as a Lambda
# (900 s): a large artifact.
REGISTRY_SERVER_OPTIONS = ("--gunicorn-opts", "--timeout 900 --log-level warning")


def start_mlflow(config: StackConfig, fresh: bool = False) -> subprocess.Popen:
    """A real ``mlflow server``: SQLite registry, artifacts in the emulator's S3.

    ``fresh`` starts an empty registry (without persistence moto's state is in memory, so a
    new stack must not see versions whose artifacts are gone); otherwise the database stays.
    """
    db = config.state_dir / "mlflow.db"
    if fresh:
        for stale in (db, db.with_suffix(".db-journal")):
            stale.unlink(missing_ok=True)
    env = registry_server_env(config)
    log = open(config.logs_dir / "mlflow.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server",
         "--backend-store-uri", f"sqlite:///{db}",
         "--artifacts-destination", f"s3://{config.artifact_bucket}/",
         "--host", config.host, "--port", str(config.mlflow_port), "--workers", "1",
         *REGISTRY_SERVER_OPTIONS],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    (config.state_dir / "mlflow.pid").write_text(str(process.pid))
    return process


def stop_stale_mlflow(config: StackConfig) -> None:
    """Kill an MLflow server a crashed stack left behind (it runs in its own session, so a
    ``kill -9`` of the stack's process group misses it, and it would hold the port)."""
    try:
        pid = int((config.state_dir / "mlflow.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError):
        return
    if b"mlflow" in cmdline and str(config.state_dir / "mlflow.db").encode() in cmdline:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)


def stop_process_group(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM a process started with ``start_new_session`` (and its children); SIGKILL
    after ``timeout`` seconds."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


SWITCH_INTERVAL_S = 0.0005


def serve(config: StackConfig) -> None:
    """Run the stack until SIGTERM/SIGINT."""
    from . import persistence

    durable = persistence.enabled()
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    # The registry server first: it is the part that takes longest to answer (two processes
    # that import MLflow), and nothing it does before a request needs the emulator, so it
    # starts while this process imports moto and restores its state.
    _registry_hold_file(config).unlink(missing_ok=True)
    stop_stale_mlflow(config)
    mlflow = start_mlflow(config, fresh=not durable)
    try:
        _serve(config, durable, mlflow)
    except BaseException:
        stop_process_group(mlflow, timeout=10)  # a start that failed; a stop after a restart is _serve's
        raise


def _serve(config: StackConfig, durable: bool, mlflow: subprocess.Popen) -> None:
    import boto3

    from botocore.exceptions import ClientError

    from . import moto_patches, persistence
    from .executor import LocalExecutor, install
    from .gateway import LocalApiGateway
    from .moto_server import MotoServer

    # One interpreter serves moto, the API gateway and the executor's pipes. A thread that
    # wakes from I/O (a gateway thread whose worker answered) waits for the GIL up to the
    # switch interval (5 ms by default) while moto's threads compute; 0.5 ms keeps that wait
    # below /predict's own time (bench/README.md, "2b. /predict under `wrk`, and where its time goes").
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    if not durable:
        config.stack_file.unlink(missing_ok=True)
    os.environ["MOTO_PORT"] = str(config.aws_port)  # moto's Step Functions calls Lambda here
    config.apply_client_env()

    executor = LocalExecutor(config)
    install(executor)
    moto_patches.install()
    store = checkpointer = None
    if durable:
        store = persistence.Store(persistence.state_folder(config.state_dir))
        restored = store.restore()
        store.start_journals()
        if restored:
            print(f"restored the emulator's state from {store.folder} in {store.restore_seconds:.2f} s: "
                  f"{', '.join(sorted(restored))}", flush=True)
    moto = MotoServer(config.host, config.aws_port, wrap=store.track_writes if store else None)
    moto.start()
    requests.post(f"{config.aws_endpoint}/moto-api/config",
                  json={"stepfunctions": {"execute_state_machine": True}}, timeout=10).raise_for_status()
    try:
        boto3.client("s3", endpoint_url=config.aws_endpoint).create_bucket(Bucket=config.artifact_bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    if store is not None:
        checkpointer = persistence.Checkpointer(store)
        checkpointer.start()
    gateway = LocalApiGateway(config, invoke=executor.invoke_function)
    gateway.serve()
    config.pid_file.write_text(str(os.getpid()))
    print(f"streamflow local stack: aws={config.aws_endpoint} mlflow={config.mlflow_uri} api={config.api_url}",
          flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            if mlflow.poll() is not None and not _registry_hold_file(config).exists():
                print(f"mlflow server exited with {mlflow.returncode}; restarting", flush=True)
                mlflow = start_mlflow(config)
    finally:
        gateway.stop()
        stop_process_group(mlflow, timeout=10)
        moto.stop()
        if checkpointer is not None:
            checkpointer.stop()  # the last checkpoint: nothing acknowledged is lost on `down`
        executor.shutdown()
        config.pid_file.unlink(missing_ok=True)


def running_pid(config: StackConfig) -> int | None:
    try:
        pid = int(config.pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def rotate_logs(config: StackConfig) -> None:
    """Without persistence: move the last stack's logs to ``logs/previous/``: a new stack
    starts empty, and its executions (named after the month and manifest) would otherwise
    find the old stack's lines under the same names. A durable stack keeps its logs: its
    executions survive with their names, so the lines still belong to them."""
    previous = config.logs_dir / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    logs = sorted(config.logs_dir.glob("*.log"))
    if logs:
        previous.mkdir(parents=True)
        for path in logs:
            path.rename(previous / path.name)


def up(config: StackConfig, timeout: float = 180.0, progress: Callable[[dict[str, bool]], None] | None = None) -> int:
    """Start ``serve`` in the background and wait until every part answers; returns its pid."""
    pid = running_pid(config)
    if pid is None:
        from .persistence import enabled

        config.logs_dir.mkdir(parents=True, exist_ok=True)
        if not enabled():
            rotate_logs(config)
        log = open(config.logs_dir / "stack.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "streamflow_local.cli", "serve"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "STREAMFLOW_AWS_PORT": str(config.aws_port),
                 "STREAMFLOW_MLFLOW_PORT": str(config.mlflow_port), "STREAMFLOW_API_PORT": str(config.api_port),
                 "STREAMFLOW_STATE_DIR": str(config.state_dir), "STREAMFLOW_STACK_NAME": config.stack_name},
        )
        pid = process.pid
    deadline = time.monotonic() + timeout
    while True:
        state = health(config)
        if progress:
            progress(state)
        if all(state.values()):
            return pid
        if time.monotonic() > deadline or (pid and not _alive(pid)):
            tail = _tail(config.logs_dir / "stack.log") + _tail(config.logs_dir / "mlflow.log")
            raise RuntimeError(f"local stack did not come up ({state}); last log lines:\n{tail}")
        time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a killed process its parent has not reaped yet is a zombie: not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
    except OSError:
        return ""


def down(config: StackConfig, timeout: float = 90.0) -> bool:
    """Stop a running stack (it writes a last checkpoint first); True if one was running."""
    pid = running_pid(config)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    config.pid_file.unlink(missing_ok=True)
    return True


@contextmanager
def deployed(config: StackConfig, parameter_overrides: dict[str, str] | None = None) -> Iterator[StackConfig]:
    """The stack started and template.yaml deployed for the block (with these template
    parameters), stopped after it (even when the block fails): the private stacks of the
    tests and benchmarks."""
    from .deploy import deploy

    try:
        up(config)
        deploy(config, parameter_overrides)
        yield config
    finally:
        down(config)

