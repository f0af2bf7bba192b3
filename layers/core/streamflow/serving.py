"""Which model serves: the champion the API loads on cold start, and how Promote pins it.

Promote writes the champion's version into the API function's environment
(``CHAMPION_VERSION``). Changing a function's configuration recycles its execution
environments on AWS (and in the local emulator), so the next request cold-starts on the
new champion: no restart, no polling.

Cold start is most of an API worker's first answer: ``registry`` fetches the champion
without importing MLflow where it can, and single predictions skip pandas and the pipeline's per-call overhead with a
``TreeScorer`` that is checked against ``predict_proba`` when the model loads.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import registry
from .settings import Settings

CHAMPION_ENV = "CHAMPION_VERSION"


@dataclass(frozen=True)
class Champion:
    version: str
    model: Any
    scorer: "TreeScorer | None" = field(default=None, compare=False)

    def probability(self, row: dict[str, Any]) -> float:
        """Churn probability of one user's raw online features."""
        if self.scorer is not None:
            return self.scorer.probability(row)
        from .online_store import rows_to_frame
        from .training import churn_probability

        return float(churn_probability(self.model, rows_to_frame({"_": row}))[0])

    def probabilities(self, rows: dict[str, dict[str, Any]]) -> dict[str, float]:
        """Churn probabilities of many users at once (the pipeline, vectorised)."""
        if not rows:
            return {}
        from .online_store import rows_to_frame
        from .training import churn_probability

        frame = rows_to_frame(rows)
        return dict(zip(frame.index, map(float, churn_probability(self.model, frame))))


class TreeScorer:
    """One row's churn probability straight from the fitted pipeline's parameters.

    For the pipeline ``training.build_pipeline`` makes (one-hot ``net_service``, booleans
    and numbers passed through, a binary ``HistGradientBoostingClassifier`` without
    categorical splits): the feature vector is built in Python and each tree walked as
    scikit-learn's predictor does (``x <= threshold`` goes left, NaN follows
    ``missing_go_to_left``), summed onto the baseline in the same order, then the logistic.
    ``build`` returns None for any other shape, or when probe rows disagree with
    ``predict_proba`` by more than 1e-9, so callers fall back to the pipeline.
    """

    def __init__(self, columns: list[tuple[str, str | None]], baseline: float, trees: list[tuple]):
        self._columns = columns
        self._baseline = baseline
        self._trees = trees

    def vector(self, row: dict[str, Any]) -> list[float]:
        from .schema import BOOLEAN_FEATURES

        out = []
        for column, category in self._columns:
            value = row.get(column)
            if category is not None:
                out.append(1.0 if (value if value is not None else "No") == category else 0.0)
            elif column in BOOLEAN_FEATURES:
                out.append(1.0 if value else 0.0)
            else:
                number = 0.0 if value is None else float(value)
                out.append(0.0 if number != number else number)
        return out

    def raw(self, x: list[float]) -> float:
        total = self._baseline
        for feature, threshold, missing_left, left, right, leaf, value in self._trees:
            node = 0
            while not leaf[node]:
                v = x[feature[node]]
                if v != v:
                    node = left[node] if missing_left[node] else right[node]
                else:
                    node = left[node] if v <= threshold[node] else right[node]
            total += value[node]
        return total

    def probability(self, row: dict[str, Any]) -> float:
        raw = self.raw(self.vector(row))
        return 1.0 / (1.0 + math.exp(-raw)) if raw >= 0 else math.exp(raw) / (1.0 + math.exp(raw))

    @classmethod
    def build(cls, model: Any) -> "TreeScorer | None":
        try:
            scorer = cls._from_pipeline(model)
        except Exception:
            return None
        return scorer if scorer is not None and scorer._agrees_with(model) else None

    @classmethod
    def _from_pipeline(cls, model: Any) -> "TreeScorer | None":
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.preprocessing import OneHotEncoder

        from .schema import BOOLEAN_FEATURES, CATEGORICAL_FEATURES, NUMERIC_FEATURES

        steps = getattr(model, "named_steps", {})
        pre, clf = steps.get("preprocess"), steps.get("model")
        if not isinstance(pre, ColumnTransformer) or not isinstance(clf, HistGradientBoostingClassifier):
            return None
        if pre.remainder != "drop" or len(clf.classes_) != 2 or clf.n_trees_per_iteration_ != 1:
            return None
        if getattr(clf, "_preprocessor", None) is not None or getattr(clf, "is_categorical_", None) is not None:
            return None
        columns: list[tuple[str, str | None]] = []
        for name, transformer, names in pre.transformers_:
            if name == "remainder":
                continue
            if name == "categorical":
                if (not isinstance(transformer, OneHotEncoder) or list(names) != list(CATEGORICAL_FEATURES)
                        or len(names) != 1 or transformer.drop is not None
                        or transformer.handle_unknown != "ignore"):
                    return None
                columns += [(names[0], str(category)) for category in transformer.categories_[0]]
            elif name in ("boolean", "numeric"):
                expected = BOOLEAN_FEATURES if name == "boolean" else NUMERIC_FEATURES
                passthrough = transformer == "passthrough" or getattr(transformer, "func", "x") is None
                if not passthrough or list(names) != list(expected):
                    return None
                columns += [(column, None) for column in names]
            else:
                return None
        if len(columns) != clf.n_features_in_:
            return None
        trees = []
        for (predictor,) in clf._predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                return None
            trees.append((nodes["feature_idx"].tolist(), nodes["num_threshold"].tolist(),
                          nodes["missing_go_to_left"].astype(bool).tolist(), nodes["left"].tolist(),
                          nodes["right"].tolist(), nodes["is_leaf"].astype(bool).tolist(),
                          nodes["value"].tolist()))
        baseline = float(clf._baseline_prediction.ravel()[0])
        return cls(columns, baseline, trees)

    def _agrees_with(self, model: Any, n: int = 64) -> bool:
        import numpy as np

        from .schema import BOOLEAN_FEATURES, CATEGORICAL_FEATURES, MODEL_FEATURES

        rng = np.random.default_rng(0)
        thresholds: dict[int, list[float]] = {}
        for feature, threshold, *_ in self._trees:
            for f, t in zip(feature, threshold):
                thresholds.setdefault(f, []).append(t)
        categories = sorted({c for _, c in self._columns if c is not None}) + ["__unseen__", None]
        index_of = {column: i for i, (column, category) in enumerate(self._columns) if category is None}
        rows = {}
        for i in range(n):
            row: dict[str, Any] = {}
            for column in MODEL_FEATURES:
                if column in CATEGORICAL_FEATURES:
                    row[column] = categories[i % len(categories)]
                elif column in BOOLEAN_FEATURES:
                    row[column] = bool(rng.integers(2)) if i % 7 else None
                else:
                    cuts = [t for t in thresholds.get(index_of.get(column, -1), []) if math.isfinite(t)] or [0.0]
                    value = float(rng.choice(cuts)) + float(rng.choice([-1e-3, 0.0, 1e-3]))
                    row[column] = None if i % 11 == 0 else value
            rows[f"probe{i}"] = row
        expected = Champion(version="", model=model).probabilities(rows)
        return all(abs(self.probability(row) - expected[key]) <= 1e-9 for key, row in rows.items())


def resolve_champion_version(settings: Settings) -> str | None:
    """The pinned version if Promote set one, else whatever ``Production`` names now."""
    pinned = os.environ.get(CHAMPION_ENV, "").strip()
    if pinned:
        return pinned
    return registry.alias_version(settings.mlflow_tracking_uri, settings.model_name)


def load_champion(settings: Settings, version: str) -> Champion:
    model = registry.load_version(settings.mlflow_tracking_uri, settings.model_name, version)
    return Champion(version=version, model=model, scorer=TreeScorer.build(model))


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
                        self._champion = load_champion(self._settings, version)
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
