"""HTTP load from ``wrk``, a load tool nobody here wrote (C, epoll, one thread drives many
keep-alive connections), so /predict is measured the way a user would measure it.

``wrk_post.lua`` sends POST bodies read from a file (one JSON document per line, cycled)
and its ``done`` hook prints the figures as one JSON line; ``run`` parses that line into the
shape the benchmark tables use. ``make bench`` installs wrk when it is missing (see the
Makefile's ``wrk`` target); without it ``find_wrk`` says how to get it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("wrk_post.lua")
INSTALL_HINT = ("wrk is not installed: `make bench` installs it with apt-get when run as root on "
                "Debian/Ubuntu; otherwise install it yourself (apt-get install wrk, brew install wrk, "
                "dnf install wrk) or put it on PATH (WRK=/path/to/wrk)")


class WrkMissing(RuntimeError):
    pass


def find_wrk() -> str | None:
    """The wrk binary: ``$WRK`` if set, else the one on PATH."""
    explicit = os.environ.get("WRK")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("wrk")


def parse_done(stdout: str) -> dict[str, Any]:
    """The JSON line the script's ``done`` hook printed (wrk's own text report precedes it)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"wrk_json"' in line:
            return json.loads(line)
    raise ValueError(f"wrk printed no JSON summary; its output ends with: {stdout[-500:]!r}")


def summarise(raw: dict[str, Any], url: str, concurrency: int) -> dict[str, Any]:
    """wrk's figures (µs, counts) → the benchmark's (ms, req/s, errors)."""
    latency = raw["latency_us"]
    seconds = max(raw["duration_us"], 1) / 1e6
    errors = sum(raw["errors"].values())
    requests = raw["requests"]

    def ms(key: str) -> float | None:
        return round(latency[key] / 1000, 3) if requests else None

    return {"url": url, "concurrency": concurrency, "tool": "wrk", "requests": requests, "errors": errors,
            "error_kinds": {k: v for k, v in raw["errors"].items() if v},
            "p50_ms": ms("p50"), "p90_ms": ms("p90"), "p99_ms": ms("p99"), "max_ms": ms("max"),
            "mean_ms": ms("mean"),
            # wrk counts every answered request; non-2xx/3xx answers are its "status" errors.
            "rps": round((requests - raw["errors"]["status"]) / seconds, 2), "seconds": round(seconds, 2)}


def run(url: str, bodies: list[Any], concurrency: int = 1, duration: float = 10.0,
        headers: dict[str, str] | None = None, threads: int = 1, wrk: str | None = None) -> dict[str, Any]:
    """``concurrency`` keep-alive connections POSTing ``bodies`` (cycled) for ``duration`` s.

    wrk counts whole seconds (``duration`` is rounded up). One wrk thread by default: it
    drives a few connections without effort, and on a small machine
    every extra thread is CPU taken from the servers being measured."""
    binary = wrk or find_wrk()
    if binary is None:
        raise WrkMissing(INSTALL_HINT)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
        for body in bodies:
            handle.write((body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))) + "\n")
    command = [binary, f"-t{max(1, min(threads, concurrency))}", f"-c{concurrency}", f"-d{max(1, math.ceil(duration))}s",
               "--latency", "--timeout", "60s", "-s", str(SCRIPT)]
    for key, value in (headers or {}).items():
        command += ["-H", f"{key}: {value}"]
    command += [url, "--", handle.name]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    finally:
        os.unlink(handle.name)
    if out.returncode != 0:
        raise RuntimeError(f"wrk exited with {out.returncode}: {out.stderr.strip()[-500:] or out.stdout[-500:]}")
    return summarise(parse_done(out.stdout), url, concurrency)
