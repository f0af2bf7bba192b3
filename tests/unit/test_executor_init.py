"""An execution environment whose init outlasts its limit fails the call with a one-line
``Runtime.InitTimeout`` and leaves no process behind (it used to stay, ready but unknown to
the pool, while every later request started another)."""

from __future__ import annotations

import time
from pathlib import Path

from streamflow_local import executor
from streamflow_local.config import StackConfig
from streamflow_local.executor import FunctionSpec, Worker


def _spec(code: Path, handler: str, timeout: float = 1.0) -> FunctionSpec:
    return FunctionSpec(name="slow-init", handler=handler, timeout=timeout, memory=128, code_dir=code,
                        layer_dirs=(), environment=())


def test_an_init_that_outlasts_its_limit_is_killed_and_reported(tmp_path, monkeypatch):
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(60)\ndef handler(event, context):\n    return 1\n")
    monkeypatch.setattr(executor, "INIT_PHASE_S", 0.5)
    started = time.monotonic()
    worker = Worker(_spec(tmp_path, "slow.handler", timeout=0.5), StackConfig(state_dir=tmp_path / "state"))
    assert time.monotonic() - started < 30
    assert worker.process.poll() is not None  # killed, not left waiting
    assert worker.alive is False
    assert worker.invoke({}) == {"ok": False, "payload": {"errorMessage": "init did not finish in 1 s",
                                                          "errorType": "Runtime.InitTimeout"}}
    worker.stop()


def test_a_quick_init_answers(tmp_path):
    (tmp_path / "quick.py").write_text("def handler(event, context):\n    return {'got': event}\n")
    worker = Worker(_spec(tmp_path, "quick.handler"), StackConfig(state_dir=tmp_path / "state"))
    try:
        assert worker.alive
        assert worker.invoke({"a": 1}) == {"ok": True, "payload": {"got": {"a": 1}}}
    finally:
        worker.stop()


def test_an_init_past_the_init_phase_may_use_the_function_timeout(tmp_path, monkeypatch):
    """As on AWS: an init longer than the init phase goes on inside the first invoke."""
    (tmp_path / "slowish.py").write_text("import time\ntime.sleep(1.5)\ndef handler(event, context):\n    return 2\n")
    monkeypatch.setattr(executor, "INIT_PHASE_S", 1.0)
    worker = Worker(_spec(tmp_path, "slowish.handler", timeout=5.0), StackConfig(state_dir=tmp_path / "state"))
    try:
        assert worker.alive
        assert worker.invoke({}) == {"ok": True, "payload": 2}
    finally:
        worker.stop()
