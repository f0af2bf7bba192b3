"""Training: a real AUC on a generated month, and concept drift that a new model fixes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamflow.contract import check_month
from streamflow.features import build_features
from streamflow.generator import generate_month, month_csv_bytes
from streamflow.schema import TARGET
from streamflow.split import split_by_user
from streamflow.training import churn_probability, evaluate_auc, train

USERS = 3000


def _month_features(month: int):
    result = check_month(month_csv_bytes(generate_month(month, n_users=USERS, seed=42)))
    assert result.ok, result.summary()
    return split_by_user(build_features(result.tables))


@pytest.fixture(scope="module")
def month0():
    return _month_features(0)


@pytest.fixture(scope="module")
def month1():
    return _month_features(1)


@pytest.fixture(scope="module")
def model0(month0):
    return train(month0[0])


@pytest.fixture(scope="module")
def model1(month1):
    return train(month1[0])


def test_model_reaches_a_real_auc_on_unseen_users(month0, model0):
    assert evaluate_auc(model0, month0[1]) > 0.75


def test_model_of_the_drifted_month_reaches_a_real_auc(month1, model1):
    assert evaluate_auc(model1, month1[1]) > 0.75


def test_concept_drift_a_month_0_model_loses_to_a_month_1_model_on_month_1(month1, model0, model1):
    validation = month1[1]
    old, new = evaluate_auc(model0, validation), evaluate_auc(model1, validation)
    assert new - old > 0.05, (old, new)


def test_month_0_model_scores_lower_on_month_1_than_on_month_0(month0, month1, model0):
    assert evaluate_auc(model0, month1[1]) < evaluate_auc(model0, month0[1])


def test_probabilities_are_one_per_row_within_zero_and_one(month0, model0):
    validation = month0[1]
    p = churn_probability(model0, validation)
    assert p.shape == (len(validation),)
    assert ((p >= 0) & (p <= 1)).all()
    # Churners are ranked above stayers on average.
    labels = validation[TARGET].to_numpy()
    assert p[labels].mean() > p[~labels].mean()


def test_model_ignores_extra_columns_and_their_order(month0, model0):
    validation = month0[1]
    shuffled = validation[list(reversed(validation.columns))].assign(extra=1.0)
    np.testing.assert_allclose(churn_probability(model0, shuffled), churn_probability(model0, validation))


def test_training_is_deterministic(month0, model0):
    again = train(month0[0])
    np.testing.assert_array_equal(churn_probability(again, month0[1]), churn_probability(model0, month0[1]))


def test_auc_on_single_class_rows_is_nan(month0, model0):
    validation = month0[1]
    churners = validation[validation[TARGET]]
    assert len(churners) > 0
    assert math.isnan(evaluate_auc(model0, churners))
    assert math.isnan(evaluate_auc(model0, validation[~validation[TARGET]]))


def test_training_on_a_single_class_is_refused(month0):
    stayers = month0[0][~month0[0][TARGET]]
    with pytest.raises(ValueError):
        train(stayers)
