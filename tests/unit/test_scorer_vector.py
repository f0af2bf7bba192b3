"""The trees scored over many rows with NumPy (``scorer_vector``) give exactly the walk's
and the compiled trees' raw scores, NaN and non-finite values included; ``probabilities``
of a batch equals ``probability`` one row at a time with or without NumPy; what is not a
tree, or splits on a column the vectors lack, is left to the row-by-row path."""

from __future__ import annotations

import functools
import math
import random

import pytest

from streamflow import scorer as scorer_module
from streamflow.scorer import VECTOR_MIN_ROWS, TreeScorer
from streamflow.scorer_export import from_pipeline
from streamflow.scorer_vector import VectorTrees
from streamflow.training import build_pipeline
from test_scorer import MISSING_ROWS, _fit, _frame, _model, _rows


@functools.cache
def _full_model():
    """The training pipeline as it serves (200 trees, up to 15 leaves: depths 5–12)."""
    return _fit(build_pipeline(), _frame())


def _vectors(scorer: TreeScorer, n: int = 400) -> list[list[float]]:
    rng = random.Random(11)
    vectors = [scorer.vector(row) for row in _rows(_frame(), n).values()]
    for vector in list(vectors[:150]):  # NaN, ±inf in any column
        odd = list(vector)
        odd[rng.randrange(len(odd))] = rng.choice([float("nan"), math.inf, -math.inf])
        vectors.append(odd)
    return vectors


@pytest.mark.parametrize("model", [_model, _full_model], ids=["20 trees", "200 trees"])
def test_numpy_gives_the_walks_and_the_compiled_raw_scores_bit_for_bit(model):
    scorer = from_pipeline(model())
    assert scorer is not None
    trees = VectorTrees.build(scorer.to_dict()["baseline"], scorer.trees, len(scorer.columns))
    assert trees is not None
    vectors = _vectors(scorer)
    walked = [scorer.raw(x) for x in vectors]
    assert trees.raw(vectors) == walked
    assert [scorer.fast_raw(x) for x in vectors] == walked
    assert trees.raw(vectors[:1]) == walked[:1] and trees.raw([]) == []
    clean = vectors[:400]  # no NaN at all: the NaN step is skipped, the answer the same
    assert trees.raw(clean) == walked[:400]


def _stump(threshold: float, missing_left: bool, values=(1.0, 2.0)) -> tuple:
    return ([0, 0, 0], [threshold, 0.0, 0.0], [missing_left, False, False], [1, 0, 0], [2, 0, 0],
            [False, True, True], [0.0, *values])


def test_nan_equality_and_non_finite_values_go_where_the_walk_sends_them():
    xs = [[0.5], [0.4999], [0.5001], [float("nan")], [-math.inf], [math.inf], [1e308]]
    for missing_left in (True, False):
        for threshold in (0.5, math.inf, -math.inf):
            tree = _stump(threshold, missing_left, values=(-1e-300, 5e-324))
            # a one-leaf tree beside it: a root that is a leaf stays put at every level
            leaf = ([0], [0.0], [False], [0], [0], [True], [0.125])
            scorer = TreeScorer([("months_active", None)], -0.0, [tree, leaf, tree])
            trees = VectorTrees.build(-0.0, scorer.trees, 1)
            assert trees is not None
            assert trees.raw(xs) == [scorer.raw(x) for x in xs], (missing_left, threshold)


def test_what_is_not_a_tree_or_reads_a_missing_column_is_not_vectorised():
    cycle = ([0, 0], [0.5, 0.5], [False, False], [1, 0], [1, 0], [False, False], [0.0, 0.0])
    shared = ([0, 0, 0], [0.5, 0.5, 0.0], [False, False, False], [1, 2, 0], [2, 2, 0], [False, False, True],
              [0.0, 0.0, 1.0])  # node 2 reached from two parents
    outside = ([0, 0, 0], [0.5, 0.0, 0.0], [False, False, False], [1, 0, 0], [5, 0, 0], [False, True, True],
               [0.0, 1.0, 2.0])
    assert VectorTrees.build(0.0, [cycle], 1) is None
    assert VectorTrees.build(0.0, [shared], 1) is None
    assert VectorTrees.build(0.0, [outside], 1) is None
    assert VectorTrees.build(0.0, [_stump(0.5, False)], 1) is not None
    assert VectorTrees.build(0.0, [([3, 0, 0], *_stump(0.5, False)[1:])], 3) is None  # column 3 of 3
    assert VectorTrees.build(0.0, [([-1, 0, 0], *_stump(0.5, False)[1:])], 3) is None


def _batch(n: int) -> dict[str, dict]:
    rows = dict(_rows(_frame(), n))
    rows.update({f"missing-{name}": row for name, row in MISSING_ROWS.items()})
    return rows


def test_a_batch_is_what_probability_gives_one_row_at_a_time():
    scorer = from_pipeline(_full_model())
    assert scorer is not None
    rows = _batch(300)
    assert len(rows) >= VECTOR_MIN_ROWS
    one_by_one = {key: scorer.probability(row) for key, row in rows.items()}
    assert scorer.probabilities(rows) == one_by_one
    assert scorer.vectorised() is not None  # the batch went through NumPy
    assert len(set(one_by_one.values())) > 50
    few = dict(list(rows.items())[:5])  # below VECTOR_MIN_ROWS: the compiled trees
    assert scorer.probabilities(few) == {key: one_by_one[key] for key in few}


def test_rows_that_arrive_in_parts_are_scored_as_one_batch():
    """``probabilities_of`` (what /predict/batch uses: one part per BatchGetItem answer)
    answers what ``probability`` does row by row, however the rows are split; a key in two
    parts is scored once, with its last row."""
    scorer = from_pipeline(_full_model())
    assert scorer is not None
    rows = _batch(300)
    one_by_one = {key: scorer.probability(row) for key, row in rows.items()}
    items = list(rows.items())
    parts = [dict(items[start:start + 100]) for start in range(0, len(items), 100)]
    assert scorer.probabilities_of(iter(parts)) == one_by_one
    assert scorer.probabilities_of([dict(items[:3]), dict(items[3:7])]) == {k: one_by_one[k] for k, _ in items[:7]}
    first, second = items[0][0], items[1][1]
    assert scorer.probabilities_of([{first: items[0][1]}, {first: second}]) == {first: scorer.probability(second)}
    assert scorer.probabilities_of([]) == {} == scorer.probabilities_of([{}, {}])


def test_without_numpy_a_batch_is_scored_row_by_row_with_the_same_answers(monkeypatch):
    scorer = from_pipeline(_model())
    assert scorer is not None
    rows = _batch(250)
    expected = {key: scorer.probability(row) for key, row in rows.items()}
    monkeypatch.delitem(__import__("sys").modules, "streamflow.scorer_vector")
    monkeypatch.setitem(__import__("sys").modules, "numpy", None)  # ``import numpy`` raises ImportError
    assert scorer.vectorised() is None
    assert scorer.probabilities(rows) == expected
    assert scorer_module.VECTOR_MIN_ROWS <= len(rows)
