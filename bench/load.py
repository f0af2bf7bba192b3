"""A closed-loop HTTP load generator, run in its own process (``python -m bench.load``).

Each of ``--concurrency`` threads keeps one HTTP/1.1 connection open and sends POSTs back
to back, cycling through the request bodies, for ``--duration`` seconds after
``--warmup`` seconds; it prints one JSON object: requests, errors, p50/p90/p99 latency
(ms) and requests per second. Only loopback targets are allowed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def _worker(host: str, port: int, path: str, bodies: list[bytes], offset: int, warm_until: float,
            stop_at: float, latencies: list[float], errors: list[int], statuses: dict[int, int],
            lock: threading.Lock, extra_headers: dict[str, str]) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=120)
    headers = {"Content-Type": "application/json", **extra_headers}
    mine: list[float] = []
    failed = 0
    seen: dict[int, int] = {}
    i = offset
    while True:
        now = time.perf_counter()
        if now >= stop_at:
            break
        body = bodies[i % len(bodies)]
        i += 1
        started = time.perf_counter()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=120)
            status = 0
        elapsed = time.perf_counter() - started
        if started >= warm_until:
            seen[status] = seen.get(status, 0) + 1
            if status == 200:
                mine.append(elapsed)
            else:
                failed += 1
    connection.close()
    with lock:
        latencies.extend(mine)
        errors.append(failed)
        for status, count in seen.items():
            statuses[status] = statuses.get(status, 0) + count


def run(url: str, bodies: list[bytes], concurrency: int = 1, duration: float = 10.0,
        warmup: float = 2.0, headers: dict[str, str] | None = None) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise SystemExit(f"refusing to load a non-loopback address: {host}")
    latencies: list[float] = []
    errors: list[int] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = time.perf_counter()
    warm_until, stop_at = start + warmup, start + warmup + duration
    threads = [threading.Thread(target=_worker, args=(host, port, parts.path or "/", bodies, k * 7919, warm_until,
                                                      stop_at, latencies, errors, statuses, lock,
                                                      headers or {}))
               for k in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    measured = max(1e-9, time.perf_counter() - warm_until)
    ordered = sorted(latencies)

    def pct(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000, 3)

    return {"url": url, "concurrency": concurrency, "requests": len(ordered), "errors": sum(errors),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "rps": round(len(ordered) / measured, 2), "seconds": round(measured, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--bodies", required=True, help="a JSON file holding a list of request bodies")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--header", action="append", default=[], help="NAME:VALUE, repeatable")
    args = parser.parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    with open(args.bodies) as handle:
        bodies = [json.dumps(b).encode() for b in json.load(handle)]
    print(json.dumps(run(args.url, bodies, args.concurrency, args.duration, args.warmup, headers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
