"""How many threads a Lambda worker's numeric libraries may start: the CPU its memory buys.

Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). OpenMP
(scikit-learn's HistGradientBoosting), OpenBLAS and MKL start one thread per core they
see instead, and their threads spin while they wait for each other. The local executor
runs many workers on a laptop's few cores, so a worker that starts a thread per core
competes with every other worker: fitting the churn model on 2,400 users took 4 to 11 s
with a thread per core on a busy two-core machine and 0.5 s with one thread. Each worker
is therefore limited to its memory's vCPU share, as on AWS, unless the function's own
environment sets a limit.
"""

from __future__ import annotations

from collections.abc import Mapping

LAMBDA_MB_PER_VCPU = 1769
THREAD_LIMIT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def vcpus_for(memory_mb: int, host_cpus: int) -> int:
    """The whole vCPUs ``memory_mb`` buys on Lambda (at least one, at most the host's cores)."""
    return max(1, min(memory_mb // LAMBDA_MB_PER_VCPU, max(1, host_cpus)))


def thread_limits(memory_mb: int, function_env: Mapping[str, str], host_cpus: int) -> dict[str, str]:
    """The thread-limit variables to give a worker: those its function does not set itself."""
    share = str(vcpus_for(memory_mb, host_cpus))
    return {name: share for name in THREAD_LIMIT_VARIABLES if name not in function_env}
