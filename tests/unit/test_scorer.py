"""TreeScorer, the API's way to score without scikit-learn, against the pipeline's
``predict_proba``: the same probabilities (missing values included), and a refusal of any
model or file it does not understand."""

from __future__ import annotations

import functools
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from conftest import _generated_month0
from streamflow.contract import check_month
from streamflow.features import build_features
from streamflow.online_store import rows_to_frame
from streamflow.schema import BOOLEAN_FEATURES, CATEGORICAL_FEATURES, MODEL_FEATURES, NUMERIC_FEATURES, TARGET
from streamflow import scorer_export
from streamflow.scorer import FORMAT, TOLERANCE, TreeScorer
from streamflow.scorer_export import agrees_with, build, from_pipeline, probe_rows
from streamflow.training import build_pipeline, churn_probability, model_input


# Fitted models are kept by the process (functools.cache), not the session: `make mutate`
# runs many sessions in forks of one process, and scikit-learn is not mutated.
@functools.cache
def _frame() -> pd.DataFrame:
    return build_features(check_month(_generated_month0()).tables)


@functools.cache
def _model():
    """The training pipeline (its shape is what the scorer reads), with fewer trees: fast."""
    return _fit(build_pipeline().set_params(model__max_iter=20), _frame())


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def scorer(model) -> TreeScorer:
    built = from_pipeline(model)
    assert built is not None
    return built


def _expected(model, rows: dict[str, dict]) -> dict[str, float]:
    frame = rows_to_frame(rows)
    return dict(zip(frame.index, map(float, churn_probability(model, frame))))


def _rows(frame: pd.DataFrame, n: int = 200) -> dict[str, dict]:
    return {user: {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for user, row in frame[MODEL_FEATURES].head(n).to_dict("index").items()}


MISSING_ROWS = {
    "all_none": {column: None for column in MODEL_FEATURES},
    "nan_numbers": {**{c: float("nan") for c in NUMERIC_FEATURES}, "net_service": "DSL", "paperless_billing": True},
    "unseen_service": {"net_service": "Satellite", "months_active": 3.0, "monthly_fee": 99.0},
    "no_service": {"net_service": "No", "months_active": 40, "monthly_fee": 20, "plan_stream_tv": True},
    "fiber_busy": {"net_service": "Fiber optic", "months_active": 1, "monthly_fee": 105.5, "skips_7d": 30,
                   "rebuffer_events_7d": 12, "failed_payments_90d": 3, "support_tickets_90d": 5},
    "numbers_as_text": {"months_active": "12", "monthly_fee": "70.35", "net_service": "DSL"},
}


def test_probabilities_match_predict_proba_on_real_users(model, scorer, frame):
    rows = _rows(frame)
    expected = _expected(model, rows)
    got = scorer.probabilities(rows)
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) <= TOLERANCE for k in rows)
    # Not a constant model: the comparison above means something.
    assert max(got.values()) - min(got.values()) > 0.2


def test_missing_and_unseen_values_are_scored_as_the_pipeline_scores_them(model, scorer):
    """Missing values as ``normalise_feature_types`` fills them (0, False, "No"); an unseen
    net_service as the one-hot encoder ignores it."""
    expected = _expected(model, MISSING_ROWS)
    for key, row in MISSING_ROWS.items():
        assert abs(scorer.probability(row) - expected[key]) <= TOLERANCE, key
    assert scorer.probability({}) == scorer.probability(MISSING_ROWS["all_none"])


def test_vector_follows_the_pipeline_columns_and_fills_missing_values(scorer):
    columns = [c for c, _ in scorer.to_dict()["columns"]]
    assert columns == ["net_service"] * 3 + BOOLEAN_FEATURES + NUMERIC_FEATURES
    categories = [k for _, k in scorer.to_dict()["columns"]][:3]
    assert categories == ["DSL", "Fiber optic", "No"]
    empty = scorer.vector({})
    assert empty == [0.0, 0.0, 1.0] + [0.0] * (len(columns) - 3)  # missing net_service is "No"
    row = {"net_service": "Fiber optic", "paperless_billing": True, "plan_stream_tv": None,
           "months_active": "7", "monthly_fee": float("nan"), "skips_7d": 4}
    vector = scorer.vector(row)
    assert vector[:6] == [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert vector[6:8] == [7.0, 0.0]
    assert vector[6 + NUMERIC_FEATURES.index("skips_7d")] == 4.0
    assert scorer.vector({"net_service": "Satellite"})[:3] == [0.0, 0.0, 0.0]


def test_missing_values_in_the_vector_follow_each_node_as_scikit_learn_does(model, scorer, frame):
    """A NaN in the transformed row takes the branch the tree recorded for missing values
    (``missing_go_to_left``), exactly as the fitted predictor routes it."""
    clf = model.named_steps["model"]
    x = np.array([scorer.vector(row) for row in _rows(frame, 50).values()], dtype=float)
    rng = np.random.default_rng(1)
    x[rng.random(x.shape) < 0.3] = np.nan
    expected = clf.decision_function(x)
    got = [scorer.raw(list(v)) for v in x]
    assert np.allclose(got, expected, rtol=0, atol=1e-9)


def _stump(missing_left: bool, low: float = -1.0, high: float = 2.0, baseline: float = 0.5) -> TreeScorer:
    """One split on months_active at 10: x <= 10 → ``low``, else ``high``."""
    tree = ([0, 0, 0], [10.0, 0.0, 0.0], [missing_left, False, False], [1, 0, 0], [2, 0, 0],
            [False, True, True], [0.0, low, high])
    return TreeScorer([("months_active", None)], baseline, [tree])


@pytest.mark.parametrize(("missing_left", "expected"), [(True, 0.5 - 1.0), (False, 0.5 + 2.0)])
def test_a_missing_value_goes_where_the_node_says(missing_left, expected):
    assert _stump(missing_left).raw([float("nan")]) == expected


def test_a_split_sends_equal_values_left_and_larger_right():
    stump = _stump(missing_left=False)
    assert stump.raw([10.0]) == -0.5 and stump.raw([9.0]) == -0.5
    assert stump.raw([10.5]) == 2.5
    assert stump.probability({"months_active": 10}) == pytest.approx(1 / (1 + math.exp(0.5)), abs=1e-15)
    assert stump.probability({"months_active": 11}) == pytest.approx(1 / (1 + math.exp(-2.5)), abs=1e-15)


def test_trees_add_up_on_the_baseline():
    stump = _stump(missing_left=True)
    two = TreeScorer([("months_active", None)], 0.5, [stump._trees[0], stump._trees[0]])
    assert two.raw([1.0]) == 0.5 - 2.0 and two.raw([11.0]) == 0.5 + 4.0


@pytest.mark.parametrize("raw", [-800.0, -30.0, -1.0, 0.0, 1.0, 30.0, 800.0])
def test_the_logistic_is_exact_and_never_overflows(raw):
    scorer = _stump(missing_left=True, low=raw, high=raw, baseline=0.0)
    probability = scorer.probability({"months_active": 1})
    assert probability == pytest.approx(1 / (1 + math.exp(-raw)) if raw > -700 else 0.0, rel=1e-12, abs=1e-300)
    assert 0.0 <= probability <= 1.0


def test_json_round_trip_scores_the_same(scorer, frame):
    again = TreeScorer.from_json(scorer.to_json())
    assert again.to_dict() == scorer.to_dict()
    rows = _rows(frame, 50)
    assert again.probabilities(rows) == scorer.probabilities(rows)
    assert ": " not in scorer.to_json() and ", " not in scorer.to_json()  # compact: it ships with the model
    data = json.loads(scorer.to_json())
    assert data["format"] == FORMAT == "streamflow.tree_scorer/1"
    assert TreeScorer.from_json(scorer.to_json().encode()).to_dict() == scorer.to_dict()


def test_from_dict_types_every_field():
    data = _stump(missing_left=True).to_dict()
    data["trees"] = [[["0", "0", "0"], ["10", 0, 0], [1, 0, 0], ["1", 0, 0], ["2", 0, 0], [0, 1, 1],
                      ["0", "-1", "2"]]]
    data["baseline"] = "0.5"
    loaded = TreeScorer.from_dict(data)
    assert loaded.to_json() == _stump(missing_left=True).to_json()  # 10 → 10.0, 1 → true: typed
    assert loaded.raw([float("nan")]) == -0.5


@pytest.mark.parametrize("fmt", [None, "streamflow.tree_scorer/2", "pickle"])
def test_an_unknown_format_is_refused(scorer, fmt):
    data = scorer.to_dict()
    if fmt is None:
        del data["format"]
    else:
        data["format"] = fmt
    with pytest.raises(ValueError, match=f"^{re.escape(f'unknown scorer format {fmt!r}')}$"):
        TreeScorer.from_dict(data)


@pytest.mark.parametrize("column", [("favourite_colour", None), ("churn_label", None), ("user_id", "7590-VHVEG")])
def test_a_column_that_is_not_a_model_feature_is_refused(scorer, column):
    data = scorer.to_dict()
    data["columns"] = data["columns"][:-1] + [list(column)]
    with pytest.raises(ValueError, match="^scorer names a column that is not a model feature$"):
        TreeScorer.from_dict(data)


def test_build_returns_the_checked_scorer_of_the_training_pipeline(model, scorer, frame):
    built = build(model, rows=_rows(frame, 20))
    assert built is not None and built.to_dict() == scorer.to_dict()
    assert agrees_with(scorer, model)


def test_a_scorer_that_disagrees_with_the_model_is_not_built(model, scorer, monkeypatch):
    data = scorer.to_dict()
    data["baseline"] += 1e-6
    assert not agrees_with(TreeScorer.from_dict(data), model)
    monkeypatch.setattr(scorer_export, "read_pipeline", lambda m: TreeScorer.from_dict(data))
    assert build(model) is None


def test_a_disagreement_on_the_callers_rows_alone_is_enough(model, scorer):
    """Rows the caller passes (the training example) are checked beside the probe rows."""
    class Shifted(TreeScorer):
        def probabilities(self, rows):
            return {key: p + (1e-6 if rows[key].get("skips_7d") == 12345 else 0.0)
                    for key, p in super().probabilities(rows).items()}

    shifted = Shifted.from_dict(scorer.to_dict())
    assert agrees_with(shifted, model)
    assert not agrees_with(shifted, model, rows={"odd": {"skips_7d": 12345}})


def _fit(pipeline: Pipeline, frame: pd.DataFrame, labels=None) -> Pipeline:
    return pipeline.fit(model_input(frame), frame[TARGET].astype(int) if labels is None else labels)


def _variant(frame, categorical=None, boolean="passthrough", numeric="passthrough", remainder="drop",
             categorical_columns=None, extra=None, classifier=None, labels=None, boolean_columns=None,
             numeric_columns=None):
    transformers = [
        ("categorical", categorical or OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         categorical_columns or CATEGORICAL_FEATURES),
        ("boolean", boolean, boolean_columns or BOOLEAN_FEATURES),
        ("numeric", numeric, numeric_columns or NUMERIC_FEATURES),
    ] + (extra or [])
    pre = ColumnTransformer(transformers, remainder=remainder, verbose_feature_names_out=False)
    clf = classifier or HistGradientBoostingClassifier(max_iter=5, early_stopping=False, random_state=0)
    return _fit(Pipeline([("preprocess", pre), ("model", clf)]), frame, labels)


def test_a_variant_of_the_right_shape_is_understood(frame):
    """The control for the refusals below: the same small pipeline, nothing changed."""
    model = _variant(frame)
    assert from_pipeline(model) is not None and build(model) is not None
    assert from_pipeline(_variant(frame, boolean=FunctionTransformer())) is not None


REFUSED = {
    "not_a_pipeline": lambda frame: LogisticRegression(),
    "other_classifier": lambda frame: _variant(frame, classifier=LogisticRegression(max_iter=200)),
    "remainder_passthrough": lambda frame: _variant(frame, remainder="passthrough", numeric_columns=NUMERIC_FEATURES[:-1]),
    "three_classes": lambda frame: _variant(frame, labels=np.arange(len(frame)) % 3),
    "categorical_splits": lambda frame: _variant(
        frame, classifier=HistGradientBoostingClassifier(max_iter=5, categorical_features=[0, 1, 2])),
    "one_hot_drops_a_category": lambda frame: _variant(
        frame, categorical=OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False)),
    "one_hot_refuses_unknowns": lambda frame: _variant(
        frame, categorical=OneHotEncoder(handle_unknown="error", sparse_output=False)),
    "categorical_not_one_hot": lambda frame: _variant(frame, categorical="passthrough",
                                                      categorical_columns=["months_active"],
                                                      numeric_columns=NUMERIC_FEATURES[1:]),
    "one_hot_of_another_column": lambda frame: _variant(frame, categorical_columns=["paperless_billing"],
                                                        boolean_columns=["plan_stream_tv", "plan_stream_movies"]),
    "scaled_numbers": lambda frame: _variant(frame, numeric=StandardScaler()),
    "transformed_booleans": lambda frame: _variant(frame, boolean=FunctionTransformer(np.asarray)),
    "numbers_reordered": lambda frame: _variant(frame, numeric_columns=NUMERIC_FEATURES[::-1]),
    "booleans_reordered": lambda frame: _variant(frame, boolean_columns=BOOLEAN_FEATURES[::-1]),
    "an_extra_transformer": lambda frame: _variant(frame, numeric_columns=NUMERIC_FEATURES[:-1],
                                                   extra=[("other", "passthrough", NUMERIC_FEATURES[-1:])]),
}


@functools.cache
def _refused(name: str):
    return REFUSED[name](_frame())


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_pipeline_of_another_shape_is_served_through_the_pipeline(name):
    """from_pipeline and build say None (the API then serves with predict_proba)."""
    model = _refused(name)
    assert from_pipeline(model) is None
    assert build(model) is None


def test_build_swallows_any_surprise():
    assert build(object()) is None
    assert build(None) is None


def test_probe_rows_reach_every_category_missing_values_and_both_sides_of_splits(scorer):
    rows = probe_rows(scorer)
    assert len(rows) == 64 and list(rows)[0] == "probe0" and list(rows)[-1] == "probe63"
    assert len(probe_rows(scorer, n=5)) == 5
    assert {r["net_service"] for r in rows.values()} == {"DSL", "Fiber optic", "No", "__unseen__", None}
    assert all(set(r) == set(MODEL_FEATURES) for r in rows.values())
    for column in BOOLEAN_FEATURES:
        values = [r[column] for r in rows.values()]
        assert None in values and True in values and False in values
    for column in NUMERIC_FEATURES:
        values = [r[column] for r in rows.values()]
        assert values[0] is None and all(isinstance(v, float) for v in values[1:11])
    assert probe_rows(scorer) == rows  # the same rows every time
    # Each numeric value sits on a split threshold or 1e-3 either side of it.
    thresholds = {t for tree in scorer.to_dict()["trees"] for f, t, leaf in zip(tree[0], tree[1], tree[5])
                  if not leaf}
    offsets = set()
    for value in (r["monthly_fee"] for r in rows.values() if r["monthly_fee"] is not None):
        nearest = min(thresholds, key=lambda t: min(abs(value - t - d) for d in (-1e-3, 0.0, 1e-3)))
        offset = round(value - nearest, 9)
        assert offset in (-0.001, 0.0, 0.001), (value, nearest)
        offsets.add(offset)
    assert len(offsets) >= 2
