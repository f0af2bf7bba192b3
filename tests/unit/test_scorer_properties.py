"""The tree scorer agrees with ``predict_proba`` (within 1e-9) on many generated models,
and a model it cannot agree with is never registered.

A seeded grid over the classifier's shape (depth, leaf count, learning rate, number of
trees, regularisation), trained with missing values in every numeric feature and with
labels that drive probabilities to near 0 and 1, scored on real rows, rows with every
feature missing one at a time, unseen and missing categories, and the probe rows."""

from __future__ import annotations

import functools
import itertools
import math
import random

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from conftest import _generated_month0
from streamflow.contract import check_month
from streamflow.features import build_features
from streamflow.schema import CATEGORICAL_FEATURES, MODEL_FEATURES, NUMERIC_FEATURES, TARGET
from streamflow.scorer import TOLERANCE
from streamflow.scorer_export import ScorerRefused, checked, disagreement, read_pipeline
from streamflow.steps import UnservableModel, servable_scorer
from streamflow.training import build_pipeline, model_input

GRID = list(itertools.product([1, 3, None], [2, 7, 31], [0.01, 0.3, 1.0]))
CASES = sorted(random.Random(20261129).sample(GRID, 8), key=str) + [(None, 31, 1.0), (1, 2, 0.01)]


@functools.cache
def _frame() -> pd.DataFrame:
    frame = build_features(check_month(_generated_month0()).tables)
    rng = np.random.default_rng(7)
    frame = frame.copy()
    for column in NUMERIC_FEATURES:  # every numeric feature has missing values to learn a direction for
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    return frame


@functools.cache
def _fit(max_depth, max_leaf_nodes, learning_rate, extreme=False):
    frame = _frame()
    labels = frame[TARGET].astype(int)
    if extreme:  # separable labels: probabilities pushed to within 1e-6 of 0 and 1
        labels = (frame["months_active"].fillna(0) < frame["months_active"].median()).astype(int)
    pipeline = build_pipeline().set_params(model__max_depth=max_depth, model__max_leaf_nodes=max_leaf_nodes,
                                           model__learning_rate=learning_rate, model__max_iter=25,
                                           model__l2_regularization=0.0 if extreme else 1.0)
    return pipeline.fit(model_input(frame), labels)


def _rows() -> dict[str, dict]:
    frame = _frame()
    rows = {f"u{i}": {k: (None if isinstance(v, float) and math.isnan(v) else v)
                      for k, v in zip(MODEL_FEATURES, values)}
            for i, values in enumerate(model_input(frame).head(300).itertuples(index=False))}
    base = next(iter(rows.values()))
    for column in MODEL_FEATURES:  # each feature missing alone
        rows[f"missing_{column}"] = {**base, column: None}
    for category in ("Satellite", None, ""):
        rows[f"category_{category}"] = {**base, CATEGORICAL_FEATURES[0]: category}
    return rows


@pytest.mark.parametrize(("max_depth", "max_leaf_nodes", "learning_rate"), CASES)
def test_the_scorer_agrees_with_predict_proba_on_generated_models(max_depth, max_leaf_nodes, learning_rate):
    model = _fit(max_depth, max_leaf_nodes, learning_rate)
    scorer = checked(model, _rows())
    assert disagreement(scorer, model, _rows()) <= TOLERANCE


def test_probabilities_near_zero_and_one_agree_too():
    model = _fit(None, 31, 1.0, extreme=True)
    rows = _rows()
    scorer = checked(model, rows)
    probabilities = list(scorer.probabilities(rows).values())
    assert min(probabilities) < 1e-4 and max(probabilities) > 1 - 1e-4
    assert disagreement(scorer, model, rows) <= TOLERANCE


def test_a_model_of_another_shape_is_refused_saying_why():
    frame = _frame().fillna(0)
    other = Pipeline([("model", LogisticRegression(max_iter=50))]).fit(
        model_input(frame)[NUMERIC_FEATURES], frame[TARGET].astype(int))
    with pytest.raises(ScorerRefused, match="not a ColumnTransformer"):
        read_pipeline(other)
    with pytest.raises(UnservableModel, match="cannot be served without scikit-learn .*not registered"):
        servable_scorer(other, model_input(frame))


def test_a_scorer_that_disagrees_is_refused_at_training(monkeypatch):
    """What TrainChallenger does before registering: a 1e-6 gap is enough to refuse."""
    from streamflow import scorer_export

    model = _fit(3, 7, 0.3)
    real = read_pipeline(model)
    shifted = type(real)(real.columns, real.to_dict()["baseline"] + 1e-6, real.trees)
    monkeypatch.setattr(scorer_export, "read_pipeline", lambda m: shifted)
    with pytest.raises(UnservableModel, match="disagrees with predict_proba by"):
        servable_scorer(model, model_input(_frame()))
    monkeypatch.setattr(scorer_export, "read_pipeline", lambda m: real)
    assert servable_scorer(model, model_input(_frame())).to_dict() == real.to_dict()
