"""Every benchmark of ``make bench`` once, at a tiny size, on a private stack as ``make
bench`` runs it: so the benchmark code cannot rot. Not the suite's stack: by now it has
decided newer months, so the benchmark's month_000/month_001 would be backfills (decided
``stale_month``, features not published, their users unknown to /predict). Benchmarks are
not tests: nothing here looks at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.package import sizes_of_build
from bench.run import run, table
from external import EXTERNAL
from streamflow_local.config import PROJECT_ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.bench_smoke,
    pytest.mark.skipif(EXTERNAL, reason="reads the local stack's worker logs and starts processes beside it"),
]


def test_every_benchmark_runs_once_at_a_tiny_size():
    results = run([1500], only=("floor", "loop", "predict", "coldstart"), duration=0.5, rounds=1,
                  concurrency=2, repeats=1, config=None, batch_size=100, loop_repeats=1)

    floor = results["floor"][0]
    assert floor["users"] == 1500 and set(floor["steps"]) == {"contract", "features", "drift", "train", "evaluate"}
    loop = results["loop"][0]["median"]
    assert loop["summary"]["retrained"] is True
    states = {step["state"]: step for step in loop["steps"]}
    assert {"Validate", "BuildFeatures", "DetectDrift", "TrainChallenger", "Compare"} <= set(states)
    assert states["BuildFeatures"]["peak_mb"] > 0  # REPORT lines carry Max Memory Used
    assert results["loop"][0]["parts"] is None  # a small month is seeded whole
    assert results["loop"][0]["stack_disk_mb"] > 0 and results["loop"][0]["seeded_mb"] > 0
    predict = results["predict"]
    assert predict["same_prediction"] is True
    for key in ("api_c1", "mlflow_c1", "api_c2", "mlflow_c2", "api_batch", "mlflow_batch"):
        assert predict["results"][key]["errors"] == 0, (key, predict["results"][key])
        assert predict["results"][key]["rps"] > 0, key
    cold = results["coldstart"]
    assert cold["fresh_process"]["served_by_scorer"] is True  # the challenger logged its tree scorer
    assert cold["through_stack"]["first_request_s"] > 0
    assert cold["fresh_process"]["imports_by_package_s"]
    text = table(results)
    for heading in ("1. Loop latency", "2. /predict", "3. Cold start", "4. Scale", "disk of the stack's state"):
        assert heading in text


def test_package_sizes_of_a_build_folder(tmp_path: Path):
    """The size arithmetic of the package benchmark (``sam build`` itself runs in ``make bench``)."""
    for layer in ("CoreLayer", "DepsLayer"):
        (tmp_path / layer / "python").mkdir(parents=True)
        (tmp_path / layer / "python" / "blob").write_bytes(b"x" * 1024 * 1024)
    (tmp_path / "ApiFunction").mkdir()
    (tmp_path / "ApiFunction" / "app.py").write_bytes(b"y" * 1024)
    sizes = sizes_of_build(tmp_path, PROJECT_ROOT / "template.yaml")
    api = sizes["functions"]["ApiFunction"]
    assert api["fits"] is True
    assert api["total_mib"] == pytest.approx(2.0, abs=0.01)
    assert table({"package": {**sizes, "build": "test", "sam_error": None}}).count("MiB") >= 2
