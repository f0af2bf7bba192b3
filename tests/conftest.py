"""For the whole suite: numeric libraries in the test process use one thread.

scikit-learn's OpenMP and OpenBLAS start a thread per core and spin while they wait for
each other; on a two-core CI machine busy with the stacks' processes that made the unit
tests that train models take 158 s instead of 34 s. The stack's Lambda workers get their
own limit from their memory (``streamflow_local/cpu_share.py``); this is the test process
and the processes it starts. A limit already in the environment is kept.
"""

from __future__ import annotations

import os

TEST_PROCESS_THREADS = "1"

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, TEST_PROCESS_THREADS)

# pytest's plugins may have loaded NumPy (and its BLAS) before this file: limit what is loaded.
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(limits=int(os.environ["OMP_NUM_THREADS"]))
