"""The compute floor: the loop's own work (contract, features, drift, train, evaluate
champion and challenger) called in one process on in-memory data, without S3, DynamoDB,
Step Functions, MLflow or process start-up."""

from __future__ import annotations

import time
from typing import Any

from .common import peak_rss_mb


def compute_floor(n_users: int, seed: int = 42, repeats: int = 1) -> dict[str, Any]:
    """The floor's work timed ``repeats`` times in this process (the data made once): the
    median run, and every run's seconds."""
    from streamflow.contract import check_month
    from streamflow.drift import measure_drift
    from streamflow.features import build_features
    from streamflow.generator import generate_month, month_csv_bytes
    from streamflow.split import split_by_user
    from streamflow.training import evaluate_auc, train

    # Outside the clock: the data, and a champion trained on the reference month.
    files = {m: month_csv_bytes(generate_month(m, n_users=n_users, seed=seed)) for m in (0, 1)}
    reference = build_features(check_month(files[0]).tables)
    champion = train(split_by_user(reference)[0])
    import evidently  # noqa: F401  (import cost is a cold start, not the floor)

    runs = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        result = check_month(files[1])
        assert result.ok, result.violations[:3]
        t1 = time.perf_counter()
        frame = build_features(result.tables)
        t2 = time.perf_counter()
        drift = measure_drift(reference, frame)
        t3 = time.perf_counter()
        training_rows, validation_rows = split_by_user(frame)
        challenger = train(training_rows)
        t4 = time.perf_counter()
        new_auc = evaluate_auc(challenger, validation_rows)
        prod_auc = evaluate_auc(champion, validation_rows)
        t5 = time.perf_counter()
        steps = {"contract": t1 - t0, "features": t2 - t1, "drift": t3 - t2, "train": t4 - t3, "evaluate": t5 - t4}
        runs.append((t5 - t0, steps))
    seconds, steps = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    return {
        "users": n_users,
        "seconds": round(seconds, 3),
        "runs": [round(run[0], 3) for run in runs],
        "steps": {k: round(v, 3) for k, v in steps.items()},
        "drift_share": round(drift.drift_share, 4),
        "new_auc": round(new_auc, 4),
        "prod_auc": round(prod_auc, 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(compute_floor(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000,
                                   repeats=int(sys.argv[2]) if len(sys.argv) > 2 else 1), indent=2))
