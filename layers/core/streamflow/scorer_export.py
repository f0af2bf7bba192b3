"""Training side of the tree scorer: read the fitted pipeline into a ``TreeScorer`` and
prove it scores as the pipeline does.

``from_pipeline`` reads the pipeline that ``training.build_pipeline`` makes (one-hot
``net_service``, booleans and numbers passed through, a binary
``HistGradientBoostingClassifier`` without categorical splits) and says None for any other
shape. ``build`` keeps a scorer only when probe rows (both sides of every split, unseen and
missing values) and the caller's rows agree with ``predict_proba`` within ``TOLERANCE``.

This module imports scikit-learn and pandas; the API never imports it (``scorer`` is the
serving side).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from .schema import BOOLEAN_FEATURES, CATEGORICAL_FEATURES, MODEL_FEATURES, NUMERIC_FEATURES
from .scorer import TOLERANCE, TreeScorer

Rows = dict[str, dict[str, Any]]


def build(model: Any, rows: Rows | None = None) -> TreeScorer | None:
    """The scorer of ``model`` if it has the expected shape and agrees with it."""
    try:
        scorer = from_pipeline(model)
        if scorer is None or not agrees_with(scorer, model, rows):
            return None
        return scorer
    except Exception:  # noqa: BLE001 - any surprise: serve through the pipeline
        return None


def from_pipeline(model: Any) -> TreeScorer | None:
    """The trees of a fitted training pipeline as plain data, or None for another shape."""
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
    return TreeScorer(columns, float(clf._baseline_prediction.ravel()[0]), trees)


def probe_rows(scorer: TreeScorer, n: int = 64) -> Rows:
    """Rows on both sides of every split, unseen and missing values included."""
    import numpy as np

    rng = np.random.default_rng(0)
    thresholds: dict[int, list[float]] = {}
    for feature, threshold, *_ in scorer.trees:
        for f, t in zip(feature, threshold):
            thresholds.setdefault(f, []).append(t)
    categories = sorted({c for _, c in scorer.columns if c is not None}) + ["__unseen__", None]
    index_of = {column: i for i, (column, category) in enumerate(scorer.columns) if category is None}
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


def agrees_with(scorer: TreeScorer, model: Any, rows: Rows | None = None) -> bool:
    """True when ``scorer`` and ``model.predict_proba`` agree on probe rows and ``rows``."""
    from .online_store import rows_to_frame
    from .training import churn_probability

    rows = {**probe_rows(scorer), **(rows or {})}
    with warnings.catch_warnings():  # missing booleans in probe rows: pandas' downcast notice
        warnings.simplefilter("ignore", FutureWarning)
        frame = rows_to_frame(rows)
    expected = dict(zip(frame.index, map(float, churn_probability(model, frame))))
    return all(abs(scorer.probability(row) - expected[key]) <= TOLERANCE for key, row in rows.items())
