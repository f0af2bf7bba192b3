"""The compute floor: the loop's own work (contract, features, drift, train, evaluate
champion and challenger) called in one process on in-memory data, without S3, DynamoDB,
Step Functions, MLflow or process start-up.

``python -m bench.floor N [REPEATS]`` times it REPEATS times and prints the figures as JSON.
``python -m bench.floor N --serve`` makes the data, prints ``ready``, then times one run for
each line read on stdin (its figures a JSON line each) and prints the summary at EOF: the
benchmark asks for a floor run right before each timed month, so each loop run has a floor
measured under the same load on this shared machine, not minutes earlier.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from .common import peak_rss_mb

STEPS = ("contract", "features", "drift", "train", "evaluate")


class Floor:
    """The floor's data made once (outside the clock: two months and a champion trained on
    the reference month), then ``run`` timed as often as asked."""

    def __init__(self, n_users: int, seed: int = 42) -> None:
        from streamflow.contract import check_month
        from streamflow.features import build_features
        from streamflow.generator import generate_month, month_csv_bytes
        from streamflow.split import split_by_user
        from streamflow.training import train

        self.n_users = n_users
        self.files = {m: month_csv_bytes(generate_month(m, n_users=n_users, seed=seed)) for m in (0, 1)}
        self.reference = build_features(check_month(self.files[0]).tables)
        self.champion = train(split_by_user(self.reference)[0])
        import evidently  # noqa: F401  (import cost is a cold start, not the floor)

        self.runs: list[tuple[float, dict[str, float]]] = []
        self.outcome: dict[str, float] = {}

    def run(self) -> tuple[float, dict[str, float]]:
        """One timed pass of the loop's work: (seconds, each step's seconds)."""
        from streamflow.contract import check_month
        from streamflow.drift import measure_drift
        from streamflow.features import build_features
        from streamflow.split import split_by_user
        from streamflow.training import evaluate_auc, train

        t0 = time.perf_counter()
        result = check_month(self.files[1])
        assert result.ok, result.violations[:3]
        t1 = time.perf_counter()
        frame = build_features(result.tables)
        t2 = time.perf_counter()
        drift = measure_drift(self.reference, frame)
        t3 = time.perf_counter()
        training_rows, validation_rows = split_by_user(frame)
        challenger = train(training_rows)
        t4 = time.perf_counter()
        new_auc = evaluate_auc(challenger, validation_rows)
        prod_auc = evaluate_auc(self.champion, validation_rows)
        t5 = time.perf_counter()
        steps = dict(zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)))
        self.runs.append((t5 - t0, steps))
        self.outcome = {"drift_share": drift.drift_share, "new_auc": new_auc, "prod_auc": prod_auc}
        return t5 - t0, steps

    def summary(self) -> dict[str, Any]:
        """The median run (and its steps), every run's seconds, the last run's outcome."""
        seconds, steps = sorted(self.runs, key=lambda run: run[0])[len(self.runs) // 2]
        return {
            "users": self.n_users,
            "seconds": round(seconds, 3),
            "runs": [round(run[0], 3) for run in self.runs],
            "steps": {k: round(v, 3) for k, v in steps.items()},
            **{k: round(v, 4) for k, v in self.outcome.items()},
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }


def compute_floor(n_users: int, seed: int = 42, repeats: int = 1) -> dict[str, Any]:
    """The floor's work timed ``repeats`` times in this process (the data made once)."""
    floor = Floor(n_users, seed)
    for _ in range(max(1, repeats)):
        floor.run()
    return floor.summary()


def serve(n_users: int, seed: int = 42) -> None:
    """One timed run per line on stdin, then the summary (see the module's docstring)."""
    floor = Floor(n_users, seed)
    print("ready", flush=True)
    for _ in sys.stdin:
        seconds, steps = floor.run()
        print(json.dumps({"seconds": round(seconds, 3), "steps": {k: round(v, 3) for k, v in steps.items()}}),
              flush=True)
    print(json.dumps(floor.summary()), flush=True)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    if len(sys.argv) > 2 and sys.argv[2] == "--serve":
        serve(n)
    else:
        print(json.dumps(compute_floor(n, repeats=int(sys.argv[2]) if len(sys.argv) > 2 else 1), indent=2))
