"""The champion's trees as plain data: churn probability without pandas or scikit-learn.

``TreeScorer.from_pipeline`` reads the fitted pipeline that ``training.build_pipeline``
makes (one-hot ``net_service``, booleans and numbers passed through, a binary
``HistGradientBoostingClassifier`` without categorical splits). ``probability`` builds the
feature vector in Python and walks each tree as scikit-learn's predictor does
(``x <= threshold`` goes left, NaN follows ``missing_go_to_left``), summing onto the
baseline in the same order, then the logistic. ``build`` returns None for any other shape,
or when probe rows disagree with ``predict_proba`` by more than 1e-9.

TrainChallenger logs the scorer as JSON beside the model (``extra_files/tree_scorer.json``);
the API loads that (no code runs when it is read, unlike a pickle or skops file) and so
never imports scikit-learn, SciPy or skops on cold start. Models without it are served
through the pipeline.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .schema import BOOLEAN_FEATURES, CATEGORICAL_FEATURES, MODEL_FEATURES, NUMERIC_FEATURES

FILE_NAME = "tree_scorer.json"
FORMAT = "streamflow.tree_scorer/1"
TOLERANCE = 1e-9


class TreeScorer:
    def __init__(self, columns: list[tuple[str, str | None]], baseline: float, trees: list[tuple]):
        self._columns = [(c, k) for c, k in columns]
        self._baseline = float(baseline)
        self._trees = [tuple(tree) for tree in trees]

    # --- scoring ---------------------------------------------------------------------------
    def vector(self, row: dict[str, Any]) -> list[float]:
        """The pipeline's transformed row, from raw features (missing values as ``normalise``)."""
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
        if raw >= 0:
            return 1.0 / (1.0 + math.exp(-raw))
        z = math.exp(raw)
        return z / (1.0 + z)

    def probabilities(self, rows: dict[str, dict[str, Any]]) -> dict[str, float]:
        return {key: self.probability(row) for key, row in rows.items()}

    # --- as data ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "columns": [list(c) for c in self._columns], "baseline": self._baseline,
                "trees": [list(tree) for tree in self._trees]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TreeScorer":
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown scorer format {data.get('format')!r}")
        columns = [(str(c), None if k is None else str(k)) for c, k in data["columns"]]
        known = set(MODEL_FEATURES)
        if any(c not in known for c, _ in columns):
            raise ValueError("scorer names a column that is not a model feature")
        trees = []
        for tree in data["trees"]:
            feature, threshold, missing_left, left, right, leaf, value = tree
            trees.append(([int(v) for v in feature], [float(v) for v in threshold], [bool(v) for v in missing_left],
                          [int(v) for v in left], [int(v) for v in right], [bool(v) for v in leaf],
                          [float(v) for v in value]))
        return cls(columns, float(data["baseline"]), trees)

    @classmethod
    def from_json(cls, text: str | bytes) -> "TreeScorer":
        return cls.from_dict(json.loads(text))

    # --- from the fitted pipeline ---------------------------------------------------------
    @classmethod
    def build(cls, model: Any, rows: dict[str, dict[str, Any]] | None = None) -> "TreeScorer | None":
        """The scorer of ``model`` if it has the expected shape and agrees with it."""
        try:
            scorer = cls.from_pipeline(model)
            if scorer is None or not scorer.agrees_with(model, rows):
                return None
            return scorer
        except Exception:  # noqa: BLE001 - any surprise: serve through the pipeline
            return None

    @classmethod
    def from_pipeline(cls, model: Any) -> "TreeScorer | None":
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.preprocessing import OneHotEncoder

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
        return cls(columns, float(clf._baseline_prediction.ravel()[0]), trees)

    def probe_rows(self, n: int = 64) -> dict[str, dict[str, Any]]:
        """Rows on both sides of every split, unseen and missing values included."""
        import numpy as np

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
        return rows

    def agrees_with(self, model: Any, rows: dict[str, dict[str, Any]] | None = None) -> bool:
        from .online_store import rows_to_frame
        from .training import churn_probability

        import warnings

        rows = {**self.probe_rows(), **(rows or {})}
        with warnings.catch_warnings():  # missing booleans in probe rows: pandas' downcast notice
            warnings.simplefilter("ignore", FutureWarning)
            frame = rows_to_frame(rows)
        expected = dict(zip(frame.index, map(float, churn_probability(model, frame))))
        return all(abs(self.probability(row) - expected[key]) <= TOLERANCE for key, row in rows.items())
