"""Which model serves: the champion the API loads on cold start, and how Promote pins it.

Promote writes the champion's version into the API function's environment
(``CHAMPION_VERSION``). Changing a function's configuration recycles its execution
environments on AWS (and in the local emulator), so the next request cold-starts on the
new champion: no restart, no polling.

Cold start is most of an API worker's first answer: ``registry_rest`` fetches the champion's
tree scorer (``scorer.py``) without importing MLflow, scikit-learn or pandas where it can,
and predictions walk those trees in Python (checked against ``predict_proba`` when the
challenger is logged) instead of paying the pipeline's per-call overhead.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import registry, registry_rest
from .scorer import TreeScorer
from .settings import Settings

CHAMPION_ENV = "CHAMPION_VERSION"


@dataclass(frozen=True)
class Champion:
    version: str
    model: Any
    scorer: TreeScorer | None = field(default=None, compare=False)

    def probability(self, row: dict[str, Any]) -> float:
        """Churn probability of one user's raw online features."""
        if self.scorer is not None:
            return self.scorer.probability(row)
        from .online_store import rows_to_frame
        from .training import churn_probability

        return float(churn_probability(self.model, rows_to_frame({"_": row}))[0])

    def probabilities(self, rows: dict[str, dict[str, Any]]) -> dict[str, float]:
        """Churn probabilities of many users at once."""
        if not rows:
            return {}
        if self.scorer is not None:
            return self.scorer.probabilities(rows)
        from .online_store import rows_to_frame
        from .training import churn_probability

        frame = rows_to_frame(rows)
        return dict(zip(frame.index, map(float, churn_probability(self.model, frame))))


def resolve_champion_version(settings: Settings) -> str | None:
    """The pinned version if Promote set one, else whatever ``Production`` names now."""
    pinned = os.environ.get(CHAMPION_ENV, "").strip()
    if pinned:
        return pinned
    return registry.alias_version(settings.mlflow_tracking_uri, settings.model_name)


def load_champion(settings: Settings, version: str) -> Champion:
    """The version's logged tree scorer if it has one (no scikit-learn needed), else its
    pipeline (with a scorer derived and checked here when the pipeline allows)."""
    scorer = registry_rest.load_scorer(settings.mlflow_tracking_uri, settings.model_name, version)
    if scorer is not None:
        return Champion(version=version, model=None, scorer=scorer)
    from . import scorer_export  # scikit-learn is loaded already: the pipeline serves

    model = registry.load_version(settings.mlflow_tracking_uri, settings.model_name, version)
    return Champion(version=version, model=model, scorer=scorer_export.build(model))


class ChampionHolder:
    """Loads the champion once; if there was none (or the registry was down), tries again
    at most every ``retry_seconds`` instead of on every request."""

    def __init__(self, settings: Settings, retry_seconds: float = 5.0):
        self._settings = settings
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._champion: Champion | None = None
        self._last_attempt = float("-inf")
        self.last_error: str | None = None
        self.load_seconds: float | None = None  # how long the last successful load took

    def get(self) -> Champion | None:
        if self._champion is not None:
            return self._champion
        with self._lock:
            if self._champion is None and time.monotonic() - self._last_attempt >= self._retry_seconds:
                self._last_attempt = time.monotonic()
                try:
                    version = resolve_champion_version(self._settings)
                    if version is None:
                        self.last_error = f"no version of {self._settings.model_name} has alias {registry.PRODUCTION}"
                    else:
                        started = time.monotonic()
                        self._champion = load_champion(self._settings, version)
                        self.load_seconds = time.monotonic() - started
                        self.last_error = None
                except Exception as exc:  # registry down: report it, try again later
                    self.last_error = f"could not load the champion: {exc}"
        return self._champion


def pin_api_version(function_name: str, version: str) -> None:
    """Set CHAMPION_VERSION on the API function (keeping its other variables)."""
    import boto3

    lambda_client = boto3.client("lambda")
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    variables = dict(config.get("Environment", {}).get("Variables", {}))
    if variables.get(CHAMPION_ENV) == version:
        return
    variables[CHAMPION_ENV] = version
    lambda_client.update_function_configuration(FunctionName=function_name, Environment={"Variables": variables})
