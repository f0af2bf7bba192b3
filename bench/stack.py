"""A private local stack for a benchmark: free ports, its own state folder under /tmp,
stopped and removed afterwards, except when the benchmark failed: then the folder (logs,
registry, the emulator's state) stays for a person to read, and its path is printed.
Other stacks on this machine are left alone."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from streamflow_local.config import StackConfig

REPORT = re.compile(r"^REPORT RequestId: \S+ Duration: ([\d.]+) ms .*Max Memory Used: (\d+) MB")


@contextmanager
def bench_stack(keep_state: bool = False, parameters: dict[str, str] | None = None) -> Iterator[StackConfig]:
    """A private stack on spare ports, ``template.yaml`` deployed with ``parameters`` over its defaults."""
    from streamflow_local.stack import deployed

    state = Path(tempfile.mkdtemp(prefix="streamflow-bench-"))
    failed = False
    try:
        with deployed(StackConfig.on_spare_ports(state_dir=state, stack_name="sfbench"), parameters or None) as config:
            config.apply_client_env()
            yield config
    except BaseException:
        failed = True  # the logs, the registry and the emulator's state are what explains it
        print(f"benchmark failed: its stack's state (logs, registry, S3) is kept in {state}",
              file=sys.stderr, flush=True)
        raise
    finally:
        if not keep_state and not failed:
            shutil.rmtree(state, ignore_errors=True)


def function_names(config: StackConfig) -> dict[str, str]:
    """logical id (e.g. ``FeaturesFunction``) → deployed function name."""
    from streamflow_local.stack_client import function_name

    description = json.loads(config.stack_file.read_text())
    return {logical: function_name(description, logical) for logical in description["functions"]}


def log_offsets(config: StackConfig) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in config.logs_dir.glob("*.log")}


def peak_memory_since(config: StackConfig, function: str, offsets: dict[str, int]) -> int | None:
    """Largest ``Max Memory Used`` (MB) in the function's REPORT lines written after ``offsets``."""
    path = config.logs_dir / f"{function}.log"
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        handle.seek(offsets.get(path.name, 0))
        text = handle.read().decode(errors="replace")
    peaks = [int(m.group(2)) for m in map(REPORT.match, text.splitlines()) if m]
    return max(peaks) if peaks else None


def durations_since(config: StackConfig, function: str, offsets: dict[str, int]) -> list[float]:
    """The handler's own ``Duration`` (ms) of each invocation logged after ``offsets``."""
    path = config.logs_dir / f"{function}.log"
    if not path.exists():
        return []
    with open(path, "rb") as handle:
        handle.seek(offsets.get(path.name, 0))
        text = handle.read().decode(errors="replace")
    return [float(m.group(1)) for m in map(REPORT.match, text.splitlines()) if m]
