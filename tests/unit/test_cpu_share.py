"""A local Lambda worker gets the CPU share its memory buys on Lambda: OpenMP/BLAS thread
limits from the function's MemorySize, never over what the function's environment says."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamflow_local.config import StackConfig
from streamflow_local.cpu_share import THREAD_LIMIT_VARIABLES, thread_limits, vcpus_for
from streamflow_local.executor import FunctionSpec, Worker


@pytest.mark.parametrize(("memory", "host", "expected"), [
    (128, 8, 1), (1768, 8, 1), (1769, 8, 1), (2048, 8, 1), (3537, 8, 1), (3538, 8, 2), (4096, 8, 2),
    (10240, 8, 5), (10240, 2, 2), (4096, 1, 1), (4096, 0, 1),
])
def test_one_vcpu_per_1769_mb_at_least_one_at_most_the_hosts(memory, host, expected):
    assert vcpus_for(memory, host) == expected


def test_every_thread_limit_is_set_unless_the_function_sets_it():
    assert thread_limits(4096, {}, 8) == {name: "2" for name in THREAD_LIMIT_VARIABLES}
    assert thread_limits(2048, {"OMP_NUM_THREADS": "4", "OTHER": "x"}, 8) == {
        "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _threads_seen(tmp_path: Path, memory: int, environment: tuple[tuple[str, str], ...]) -> dict:
    (tmp_path / "env_probe.py").write_text(
        "import os\ndef handler(event, context):\n"
        f"    return {{k: os.environ.get(k) for k in {list(THREAD_LIMIT_VARIABLES)!r}}}\n")
    spec = FunctionSpec(name="probe", handler="env_probe.handler", timeout=30.0, memory=memory, code_dir=tmp_path,
                        layer_dirs=(), environment=environment)
    worker = Worker(spec, StackConfig(state_dir=tmp_path / "state"))
    try:
        answer = worker.invoke({})
    finally:
        worker.stop()
    assert answer["ok"], answer
    return answer["payload"]


def test_a_worker_runs_with_its_memorys_share_and_the_functions_own_setting_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # the stack's own environment is not the function's
    seen = _threads_seen(tmp_path, 2048, ())
    assert seen == {name: "1" for name in THREAD_LIMIT_VARIABLES}
    seen = _threads_seen(tmp_path, 2048, (("OMP_NUM_THREADS", "3"),))
    assert seen == {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
