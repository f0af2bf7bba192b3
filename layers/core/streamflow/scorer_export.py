"""Training side of the tree scorer: read the fitted pipeline into a ``TreeScorer`` and
prove it scores as the pipeline does.

``read_pipeline`` reads the pipeline that ``training.build_pipeline`` makes (one-hot
``net_service``, booleans and numbers passed through, a binary
``HistGradientBoostingClassifier`` without categorical splits) and raises ``ScorerRefused``,
saying why, for any other shape. ``checked`` also requires probe rows (both sides of every
split, unseen and missing values) and the caller's rows to agree with ``predict_proba``
within ``TOLERANCE``: TrainChallenger registers no model that fails it, since the API could
not serve it without scikit-learn. ``from_pipeline`` and ``build`` say None instead of why.

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


class ScorerRefused(ValueError):
    """The model cannot be turned into a ``TreeScorer`` that scores as it does; says why."""


def build(model: Any, rows: Rows | None = None) -> TreeScorer | None:
    """The scorer of ``model`` if it has the expected shape and agrees with it."""
    try:
        return checked(model, rows)
    except Exception:  # noqa: BLE001 - any surprise: serve through the pipeline
        return None


def checked(model: Any, rows: Rows | None = None) -> TreeScorer:
    """The scorer of ``model``, or ``ScorerRefused`` saying why there is none."""
    scorer = read_pipeline(model)
    worst = disagreement(scorer, model, rows)
    if worst > TOLERANCE:
        raise ScorerRefused(f"the tree scorer disagrees with predict_proba by {worst:.3g} (tolerance {TOLERANCE:g})")
    return scorer


def from_pipeline(model: Any) -> TreeScorer | None:
    """The trees of a fitted training pipeline as plain data, or None for another shape."""
    try:
        return read_pipeline(model)
    except ScorerRefused:
        return None


def read_pipeline(model: Any) -> TreeScorer:
    """The trees of a fitted training pipeline as plain data; ``ScorerRefused`` for another shape."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.preprocessing import OneHotEncoder

    steps = getattr(model, "named_steps", {})
    pre, clf = steps.get("preprocess"), steps.get("model")
    if not isinstance(pre, ColumnTransformer) or not isinstance(clf, HistGradientBoostingClassifier):
        raise ScorerRefused("not a ColumnTransformer + HistGradientBoostingClassifier pipeline")
    if pre.remainder != "drop" or len(clf.classes_) != 2 or clf.n_trees_per_iteration_ != 1:
        raise ScorerRefused("not a binary classifier over the listed columns only")
    if getattr(clf, "_preprocessor", None) is not None or getattr(clf, "is_categorical_", None) is not None:
        raise ScorerRefused("the classifier splits on categories")
    columns: list[tuple[str, str | None]] = []
    for name, transformer, names in pre.transformers_:
        if name == "remainder":
            continue
        if name == "categorical":
            if (not isinstance(transformer, OneHotEncoder) or list(names) != list(CATEGORICAL_FEATURES)
                    or len(names) != 1 or transformer.drop is not None
                    or transformer.handle_unknown != "ignore"):
                raise ScorerRefused(f"categorical step is not a one-hot of {list(CATEGORICAL_FEATURES)} "
                                    "that keeps every category and ignores unknown ones")
            columns += [(names[0], str(category)) for category in transformer.categories_[0]]
        elif name in ("boolean", "numeric"):
            expected = BOOLEAN_FEATURES if name == "boolean" else NUMERIC_FEATURES
            passthrough = transformer == "passthrough" or getattr(transformer, "func", "x") is None
            if not passthrough or list(names) != list(expected):
                raise ScorerRefused(f"{name} step does not pass {list(expected)} through unchanged, in order")
            columns += [(column, None) for column in names]
        else:
            raise ScorerRefused(f"unknown preprocessing step {name!r}")
    if len(columns) != clf.n_features_in_:
        raise ScorerRefused(f"{len(columns)} columns read, the classifier has {clf.n_features_in_}")
    trees = []
    for (predictor,) in clf._predictors:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise ScorerRefused("a tree splits on categories")
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
    return disagreement(scorer, model, rows) <= TOLERANCE


def disagreement(scorer: TreeScorer, model: Any, rows: Rows | None = None) -> float:
    """The largest gap between ``scorer`` and ``model.predict_proba`` on probe rows and ``rows``."""
    from .online_store import rows_to_frame
    from .training import churn_probability

    rows = {**probe_rows(scorer), **(rows or {})}
    with warnings.catch_warnings():  # missing booleans in probe rows: pandas' downcast notice
        warnings.simplefilter("ignore", FutureWarning)
        frame = rows_to_frame(rows)
    expected = dict(zip(frame.index, map(float, churn_probability(model, frame))))
    # All rows in one call, as /predict/batch scores them: with NumPy from VECTOR_MIN_ROWS
    # (TrainChallenger's 320 rows: ≈ 11 ms, where compiling the trees for row-by-row
    # scoring took ≈ 46 ms more); every path gives the same floats (test_scorer_vector).
    scored = scorer.probabilities(rows)
    gaps = [abs(scored[key] - expected[key]) for key in rows]
    return max(gaps) if all(gap == gap for gap in gaps) else math.inf  # a NaN gap never agrees
