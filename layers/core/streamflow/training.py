"""Train and evaluate the churn model: a scikit-learn pipeline that owns its preprocessing.

The pipeline takes the raw model features (booleans, the ``net_service`` text) so the
logged MLflow model serves straight from the online feature table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from .schema import BOOLEAN_FEATURES, CATEGORICAL_FEATURES, MODEL_FEATURES, NUMERIC_FEATURES, TARGET

RANDOM_STATE = 7


def build_pipeline() -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL_FEATURES),
            ("boolean", "passthrough", BOOLEAN_FEATURES),
            ("numeric", "passthrough", NUMERIC_FEATURES),
        ],
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0,
        early_stopping=False, random_state=RANDOM_STATE,
    )
    return Pipeline([("preprocess", preprocess), ("model", model)])


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns (and order) the model is trained and served with."""
    return frame[MODEL_FEATURES]


def train(frame: pd.DataFrame) -> Pipeline:
    labels = frame[TARGET].astype(int)
    if labels.nunique() < 2:
        raise ValueError("training data has a single class; cannot train a classifier")
    pipeline = build_pipeline()
    pipeline.fit(model_input(frame), labels)
    return pipeline


def churn_probability(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(model_input(frame))[:, 1]


def evaluate_auc(model: Pipeline, frame: pd.DataFrame) -> float:
    """ROC AUC on labelled rows; NaN when the rows hold a single class."""
    labels = frame[TARGET].astype(int)
    if labels.nunique() < 2:
        return float("nan")
    return float(roc_auc_score(labels, churn_probability(model, frame)))
