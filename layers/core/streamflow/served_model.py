"""Which model serves: the champion the API loads on cold start, and how Promote pins it.

Promote writes the champion's version and the S3 copy of its tree scorer into the API
function's environment (``champion_pin``). Changing a function's configuration recycles its
execution environments on AWS (and in the local emulator), so the next request cold-starts
on the new champion: no restart, no polling.

At cold start the API reads the pinned scorer from S3 with its own role: no registry call,
so a registry that is down or needs credentials cannot stop it. A stack whose API has no
pinned copy (deployed before Promote wrote one, or a version logged without a scorer) falls
back to the registry: ``registry_rest`` fetches the scorer without importing MLflow where it
can, else MLflow's client loads the pipeline. Predictions walk the trees in Python
(``scorer.py``, checked against ``predict_proba`` when the challenger is logged).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import champion_pin, registry, registry_rest
from .champion_pin import CHAMPION_ENV, Pin, ScorerCopy
from .scorer import TreeScorer
from .settings import Settings

__all__ = ["CHAMPION_ENV", "Champion", "ChampionHolder", "load_champion", "pin_api_version"]


@dataclass(frozen=True)
class Champion:
    version: str
    model: Any
    scorer: TreeScorer | None = field(default=None, compare=False)
    source: str = field(default="", compare=False)  # where it was read from (``/health``)

    def probability(self, row: dict[str, Any]) -> float:
        """Churn probability of one user's raw online features."""
        if self.scorer is not None:
            return self.scorer.probability(row)
        from .online_store import rows_to_frame
        from .training import churn_probability

        return float(churn_probability(self.model, rows_to_frame({"_": row}))[0])

    def probabilities(self, rows: dict[str, dict[str, Any]]) -> dict[str, float]:
        """Churn probabilities of many users at once."""
        return self.probabilities_of([rows])

    def probabilities_of(self, parts: Iterable[dict[str, dict[str, Any]]]) -> dict[str, float]:
        """``probabilities`` of rows that arrive in parts (``online_store.iter_online_rows``):
        the scorer prepares each part as it arrives and scores them all at once."""
        if self.scorer is not None:
            return self.scorer.probabilities_of(parts)
        rows: dict[str, dict[str, Any]] = {}
        for part in parts:
            rows.update(part)
        if not rows:
            return {}
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
    """The pinned S3 copy of the version's scorer when Promote wrote one (no registry call);
    else, from the registry, its logged tree scorer (no scikit-learn needed) or its pipeline
    (with a scorer derived and checked here when the pipeline allows)."""
    pin = champion_pin.read_pin(os.environ)
    if pin is not None and pin.version == version and pin.scorer is not None:
        scorer = champion_pin.read_scorer(pin.scorer, settings.serving_prefix)
        return Champion(version=version, model=None, scorer=scorer, source=pin.scorer.uri)
    source = f"registry {settings.mlflow_tracking_uri} models:/{settings.model_name}/{version}"
    scorer = registry_rest.load_scorer(settings.mlflow_tracking_uri, settings.model_name, version)
    if scorer is not None:
        return Champion(version=version, model=None, scorer=scorer, source=source)
    from . import scorer_export  # scikit-learn is loaded already: the pipeline serves

    model = registry.load_version(settings.mlflow_tracking_uri, settings.model_name, version)
    return Champion(version=version, model=model, scorer=scorer_export.build(model), source=source)


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


def pin_api_version(function_name: str, version: str, scorer: ScorerCopy | None = None) -> None:
    """Pin ``version`` (and the S3 copy of its scorer, if any) on the API function in one
    configuration update, keeping its other variables; no update when nothing changes."""
    import boto3

    lambda_client = boto3.client("lambda")
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    variables = dict(config.get("Environment", {}).get("Variables", {}))
    wanted = champion_pin.pinned_variables(variables, Pin(version=version, scorer=scorer))
    if wanted == variables:
        return
    lambda_client.update_function_configuration(FunctionName=function_name, Environment={"Variables": wanted})
