"""/predict through the local API Gateway vs ``mlflow models serve`` of the same
Production model, under the same load from ``wrk`` (``bench/wrk.py``; the project's own
Python generator ``bench.load`` only where wrk is not installed, e.g. the smoke test on a
machine without it), plus ``POST /predict/batch`` vs a 1,000-row ``/invocations``. Rounds
alternate the two servers so both see the same machine; the medians of the rounds are
reported, with every round's p50/p99 kept, and the API function's own handler time (its
``REPORT`` Duration) beside the HTTP figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from streamflow_local.config import PROJECT_ROOT, StackConfig, free_port
from streamflow_local.stack import stop_process_group

from . import wrk
from .common import median
from .stack import durations_since, log_offsets


def api_headers(config: StackConfig) -> dict[str, str]:
    """Headers the local API gateway wants (an API key, if the deployed stack has one)."""
    try:
        description = json.loads(config.stack_file.read_text())
    except (OSError, ValueError):
        return {}
    key = (description.get("api") or {}).get("api_key") or (description.get("api") or {}).get("key")
    return {"x-api-key": key} if key else {}


def _features(folder: Path):
    from streamflow.contract import check_month
    from streamflow.features import build_features
    from streamflow.schema import MODEL_FEATURES

    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".csv"}
    return build_features(check_month(files).tables)[list(MODEL_FEATURES)]


def _served_features(config: StackConfig, user_id: str):
    """The user's row in the online table: what /predict scores. On a stack that already
    decided a newer month, the benchmark's own month is a backfill whose features are not
    published, so its files are not what the API reads."""
    from streamflow import online_store

    config.apply_client_env()
    table = json.loads(config.stack_file.read_text())["outputs"]["FeatureTableName"]
    return online_store.read_online_features(table, user_id)


def _split_body(frame) -> dict[str, Any]:
    records = json.loads(frame.to_json(orient="split", index=False))
    return {"dataframe_split": {"columns": records["columns"], "data": records["data"]}}


def load_tool() -> str:
    """``wrk`` where it is installed, else the Python generator."""
    return "wrk" if wrk.find_wrk() else "python"


def _load(url: str, bodies: list[dict], concurrency: int, duration: float, warmup: float,
          headers: dict[str, str] | None = None, tool: str = "wrk") -> dict[str, Any]:
    if tool == "wrk":  # warmed up by the runs before it; wrk has no warm-up phase of its own
        return wrk.run(url, bodies, concurrency, duration, headers)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(bodies, handle)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "bench.load", url, "--bodies", handle.name, "--concurrency", str(concurrency),
             "--duration", str(duration), "--warmup", str(warmup)]
            + [arg for k, v in (headers or {}).items() for arg in ("--header", f"{k}:{v}")],
            cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=duration + warmup + 600,
        )
    finally:
        os.unlink(handle.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_mlflow_serve(config: StackConfig, model_uri: str, workers: int,
                       attempts: int = 2) -> tuple[subprocess.Popen, str]:
    """``mlflow models serve`` of the model on a spare port, once it answers /ping. A server that
    exits at start (e.g. the spare port was taken between picking and binding) is started again
    on another port; if the last attempt exits too, the error carries the end of its log."""
    for _ in range(attempts - 1):
        try:
            return _start_mlflow_serve_once(config, model_uri, workers)
        except ServeExited:
            continue
    try:
        return _start_mlflow_serve_once(config, model_uri, workers)
    except ServeExited as exited:
        raise RuntimeError(str(exited)) from None


class ServeExited(Exception):
    pass


def _start_mlflow_serve_once(config: StackConfig, model_uri: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, **config.client_env()}
    # it execs ``uvicorn`` by name: this environment's bin first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    log_path = config.logs_dir / "mlflow-serve.log"
    start = log_path.stat().st_size if log_path.exists() else 0
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
         "--host", "127.0.0.1", "-p", str(port), "--workers", str(workers)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            tail = log_path.read_bytes()[start:].decode(errors="replace")[-3000:]
            raise ServeExited(f"mlflow models serve exited with {process.returncode} on port {port}; "
                              f"the end of {log_path}:\n{tail}\n{_artifact_listing(config)}")
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                return process, url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    stop(process)
    raise RuntimeError("mlflow models serve did not answer /ping in 300 s")


def _artifact_listing(config: StackConfig) -> str:
    """What the registry's artifact bucket holds under ``*/models/``: the first thing to know
    when ``mlflow models serve`` finds no ``MLmodel`` to load."""
    import boto3

    try:
        s3 = boto3.client("s3", endpoint_url=config.aws_endpoint, region_name=config.region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config.artifact_bucket)
                for o in page.get("Contents", [])]
    except Exception as exc:  # noqa: BLE001 - a diagnostic: say why it could not look
        return f"(could not list s3://{config.artifact_bucket}: {exc!r})"
    models = [k for k in keys if "/models/" in k]
    try:
        found = requests.get(f"{config.mlflow_uri}/api/2.0/mlflow/model-versions/search", timeout=10,
                             params={"max_results": 100}).json().get("model_versions", [])
        versions = "; ".join(f"v{v.get('version')} source={v.get('source')} run={v.get('run_id')} "
                             f"created={v.get('creation_timestamp')} aliases={v.get('aliases')}" for v in found)
    except Exception as exc:  # noqa: BLE001 - a diagnostic
        versions = f"(could not search the registry's versions: {exc!r})"
    return (f"s3://{config.artifact_bucket} holds {len(keys)} keys, {len(models)} under */models/: "
            + ", ".join(models[:40]) + f"\nregistry versions: {versions}")


def stop(process: subprocess.Popen) -> None:
    stop_process_group(process, timeout=20)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    p50s = [r["p50_ms"] for r in runs if r["p50_ms"] is not None]
    p99s = [r["p99_ms"] for r in runs if r["p99_ms"] is not None]
    return {
        "p50_ms": round(median(p50s), 3),
        "p99_ms": round(median(p99s), 3),
        "rps": round(median([r["rps"] for r in runs]), 2),
        "errors": sum(r["errors"] for r in runs),
        # the tail of the worst round: "p99 <= 10x p50" must hold in every round, not the median
        "worst_p99_over_p50": round(max((r["p99_ms"] / r["p50_ms"] for r in runs if r["p50_ms"] and r["p99_ms"]),
                                        default=float("nan")), 2),
        "rounds": runs,
    }


def predict_benchmark(config: StackConfig, folder: Path, model_name: str = "streamflow_churn",
                      duration: float = 10.0, warmup: float = 2.0, rounds: int = 3, concurrency: int = 4,
                      batch_size: int = 1000, sample: int = 2000, mlflow_workers: int = 1,
                      tool: str | None = None) -> dict[str, Any]:
    """``tool``: ``wrk`` (what ``make bench`` uses) or ``python``; default: wrk if installed."""
    from streamflow import registry

    tool = tool or load_tool()
    version = registry.alias_version(config.mlflow_uri, model_name)
    if version is None:
        raise RuntimeError("no Production model: run the loop first")
    frame = _features(folder)
    users = list(frame.index[:sample])
    api_bodies = [{"user_id": u} for u in users]
    mlflow_bodies = [_split_body(frame.loc[[u]]) for u in users]
    batch_ids = [users[i:i + batch_size] for i in range(0, len(users), batch_size)] or [users]
    api_batch_bodies = [{"user_ids": ids} for ids in batch_ids]
    mlflow_batch_bodies = [_split_body(frame.loc[ids]) for ids in batch_ids]

    headers = api_headers(config)
    api, api_batch = f"{config.api_url}/predict", f"{config.api_url}/predict/batch"
    process, serve_url = start_mlflow_serve(config, f"models:/{model_name}@Production", mlflow_workers)
    serve = f"{serve_url}/invocations"
    c = f"c{concurrency}"
    handler_ms: dict[str, list[float]] = {"api_c1": [], f"api_{c}": [], "api_batch": []}
    try:
        # Same answer from both (MLflow's pyfunc returns the class, the API the probability too).
        served = _served_features(config, users[0])
        api_answer = requests.post(api, json=api_bodies[0], headers=headers, timeout=120).json()
        mlflow_answer = requests.post(serve, json=_split_body(served if served is not None else frame.loc[[users[0]]]),
                                      timeout=120).json()
        agree = bool(api_answer.get("churn_prediction")) == bool(mlflow_answer["predictions"][0])
        # Warm both up at the highest concurrency (the executor starts one worker per
        # concurrent request, as Lambda does), then measure.
        warm = duration if duration < 2 else max(2.0, duration / 2)
        _load(api, api_bodies, concurrency, warm, 0, headers, tool)
        _load(serve, mlflow_bodies, concurrency, warm, 0, None, tool)
        _load(api_batch, api_batch_bodies, 1, min(warm, 2.0), 0, headers, tool)
        _load(serve, mlflow_batch_bodies, 1, min(warm, 2.0), 0, None, tool)
        results: dict[str, list[dict[str, Any]]] = {
            k: [] for k in ("api_c1", "mlflow_c1", f"api_{c}", f"mlflow_{c}", "api_batch", "mlflow_batch")}
        function = json.loads(config.stack_file.read_text())["api"]["function"]

        def api_run(key: str, url: str, bodies: list[dict], n: int) -> None:
            offsets = log_offsets(config)
            results[key].append(_load(url, bodies, n, duration, warmup, headers, tool))
            handler_ms[key] += durations_since(config, function, offsets)

        for _ in range(rounds):
            api_run("api_c1", api, api_bodies, 1)
            results["mlflow_c1"].append(_load(serve, mlflow_bodies, 1, duration, warmup, None, tool))
            api_run(f"api_{c}", api, api_bodies, concurrency)
            results[f"mlflow_{c}"].append(_load(serve, mlflow_bodies, concurrency, duration, warmup, None, tool))
            api_run("api_batch", api_batch, api_batch_bodies, 1)
            results["mlflow_batch"].append(_load(serve, mlflow_batch_bodies, 1, duration, warmup, None, tool))
    finally:
        stop(process)
    summary = {key: _summary(runs) for key, runs in results.items()}
    rows_per_request = len(batch_ids[0])
    # Inside the API function (REPORT Duration: FastAPI + DynamoDB GetItem + scoring): what
    # Lambda bills on AWS. The rest of the latency is the gateway → executor → worker path.
    for key, values in handler_ms.items():
        summary[key]["handler_p50_ms"] = round(median(values), 2) if values else None
    for key in ("api_batch", "mlflow_batch"):
        summary[key]["rows_per_s"] = round(summary[key]["rps"] * rows_per_request, 1)
    return {
        "model_version": version, "same_prediction": agree, "concurrency": concurrency, "duration_s": duration,
        "rounds": rounds, "batch_rows": rows_per_request, "mlflow_workers": mlflow_workers, "tool": tool,
        "results": summary,
        "throughput_ratio_c1": round(summary["api_c1"]["rps"] / max(summary["mlflow_c1"]["rps"], 1e-9), 2),
        f"throughput_ratio_{c}": round(summary[f"api_{c}"]["rps"] / max(summary[f"mlflow_{c}"]["rps"], 1e-9), 2),
        "batch_rows_ratio": round(summary["api_batch"]["rows_per_s"] / max(summary["mlflow_batch"]["rows_per_s"], 1e-9),
                                  2),
    }
