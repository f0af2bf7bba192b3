"""Cold start of a new API worker: (1) through the stack — the API function's configuration
changes, so (as on Lambda) the next request starts a new worker; the first request's
latency is imports + model load + lookup + answer; (2) the same init in a fresh process
with ``python -X importtime``: init, model load, first answer, and import time by package
(self time summed per top-level package, so nothing is counted twice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import requests

from streamflow_local.config import PROJECT_ROOT, StackConfig

from .common import median


def _api_function(config: StackConfig) -> str:
    return json.loads(config.stack_file.read_text())["api"]["function"]


def _lambda(config: StackConfig):
    import boto3

    return boto3.client("lambda", endpoint_url=config.aws_endpoint, region_name=config.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _headers(config: StackConfig) -> dict[str, str]:
    from .predict import api_headers

    return api_headers(config)


def through_stack(config: StackConfig, user_id: str, repeats: int = 3) -> dict[str, Any]:
    client, function = _lambda(config), _api_function(config)
    firsts, warms = [], []
    for i in range(repeats):
        variables = dict(client.get_function_configuration(FunctionName=function)
                         .get("Environment", {}).get("Variables", {}))
        variables["BENCH_COLD_START"] = f"{time.time_ns()}-{i}"  # a configuration change: new workers
        client.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
        started = time.perf_counter()
        first = requests.post(f"{config.api_url}/predict", json={"user_id": user_id}, headers=_headers(config),
                              timeout=300)
        firsts.append(time.perf_counter() - started)
        first.raise_for_status()
        started = time.perf_counter()
        requests.post(f"{config.api_url}/predict", json={"user_id": user_id}, headers=_headers(config), timeout=60)
        warms.append(time.perf_counter() - started)
    return {"first_request_s": round(median(firsts), 3), "warm_request_s": round(median(warms), 4),
            "runs_s": [round(v, 3) for v in firsts]}


def import_profile(stderr: str, top: int = 10) -> list[tuple[str, float]]:
    """Self import time (s) per top-level package from ``-X importtime`` output."""
    totals: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        try:
            self_us, _, name = (part.strip() for part in line[len("import time:"):].split("|"))
            totals[name.split(".")[0]] = totals.get(name.split(".")[0], 0) + int(self_us)
        except ValueError:
            continue  # the header line
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return [(name, round(us / 1e6, 3)) for name, us in ranked]


def in_process(config: StackConfig, user_id: str, repeats: int = 3) -> dict[str, Any]:
    variables = _lambda(config).get_function_configuration(FunctionName=_api_function(config))
    env = {**os.environ, **config.client_env(), **variables.get("Environment", {}).get("Variables", {})}
    env["MLFLOW_REGISTRY_URI"] = env["MLFLOW_TRACKING_URI"]  # the function's registry, as on Lambda
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT / "functions" / "api"), str(PROJECT_ROOT / "layers" / "core")])
    runs, stderr = [], ""
    for i in range(repeats):
        args = [sys.executable] + (["-X", "importtime"] if i == repeats - 1 else []) + \
               [str(PROJECT_ROOT / "bench" / "coldstart_probe.py"), user_id]
        done = subprocess.run(args, cwd=PROJECT_ROOT / "functions" / "api", env=env, capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        stderr = done.stderr
    timed = runs[:-1] or runs  # the -X importtime run is slower: profile only (unless it is the only one)
    keys = ("init_seconds", "model_load_seconds", "first_request_seconds", "total_seconds")
    out = {k: round(median([r[k] for r in timed if r.get(k) is not None]), 3) for k in keys}
    out["served_by_scorer"] = all(r.get("scorer") for r in runs)
    out["imports_by_package_s"] = import_profile(stderr)
    return out


def coldstart_benchmark(config: StackConfig, user_id: str, repeats: int = 3) -> dict[str, Any]:
    return {"through_stack": through_stack(config, user_id, repeats),
            "fresh_process": in_process(config, user_id, repeats + 1 if repeats > 1 else 1)}
