"""A small HTTP load tool, run as its own process: N POST /predict requests from C
keep-alive connections; prints one JSON line with status counts and latency percentiles.

usage: python loadgen.py URL API_KEY USER_IDS_FILE REQUESTS CONCURRENCY
"""

from __future__ import annotations

import http.client
import itertools
import json
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    url, api_key, ids_file, total, concurrency = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    parts = urlsplit(url)
    user_ids = [line.strip() for line in open(ids_file) if line.strip()]
    counter = itertools.count()
    lock = threading.Lock()
    statuses: dict[str, int] = {}
    latencies: list[float] = []

    def worker() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        while (i := next(counter)) < total:
            body = json.dumps({"user_id": user_ids[i % len(user_ids)]})
            started = time.perf_counter()
            try:
                connection.request("POST", "/predict", body=body,
                                   headers={"Content-Type": "application/json", "x-api-key": api_key})
                response = connection.getresponse()
                response.read()
                status = str(response.status)
            except (OSError, http.client.HTTPException) as exc:
                status = f"error:{type(exc).__name__}"
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
            elapsed = time.perf_counter() - started
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    print(json.dumps({"requests": len(latencies), "statuses": statuses, "seconds": round(wall, 2),
                      "rps": round(len(latencies) / wall, 1), "p50_ms": round(quantiles[49] * 1000, 2),
                      "p99_ms": round(quantiles[98] * 1000, 2)}))


if __name__ == "__main__":
    main()
