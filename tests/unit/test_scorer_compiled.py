"""The trees compiled to Python (``scorer_compiled``) give exactly the walk's raw score
(same comparisons, same additions in the same order), NaN and non-finite thresholds
included, and refuse what is not a tree instead of looping."""

from __future__ import annotations

import math
import random

from streamflow.scorer import TreeScorer
from streamflow.scorer_compiled import MAX_DEPTH, compile_trees
from test_scorer import _model, _rows, _frame
from streamflow.scorer_export import from_pipeline


def _vectors(scorer: TreeScorer, n: int = 300) -> list[list[float]]:
    rng = random.Random(7)
    vectors = [scorer.vector(row) for row in _rows(_frame(), n).values()]
    for vector in list(vectors[:100]):  # NaN in any column follows missing_go_to_left
        noisy = list(vector)
        noisy[rng.randrange(len(noisy))] = float("nan")
        vectors.append(noisy)
    return vectors


def test_compiled_trees_give_the_walks_raw_score_bit_for_bit():
    scorer = from_pipeline(_model())
    assert scorer is not None
    raw = compile_trees(scorer.to_dict()["baseline"], scorer.trees)
    assert raw is not None
    vectors = _vectors(scorer)
    assert [raw(x) for x in vectors] == [scorer.raw(x) for x in vectors]
    assert [scorer.fast_raw(x) for x in vectors] == [scorer.raw(x) for x in vectors]


def _stump(threshold: float, missing_left: bool) -> tuple:
    # node 0 splits feature 0; node 1 (left) is worth 1.0, node 2 (right) 2.0
    return ([0, 0, 0], [threshold, 0.0, 0.0], [missing_left, False, False], [1, 0, 0], [2, 0, 0],
            [False, True, True], [0.0, 1.0, 2.0])


def test_nan_and_equality_go_where_the_walk_sends_them():
    for missing_left in (True, False):
        tree = _stump(0.5, missing_left)
        scorer = TreeScorer([("months_active", None)], 0.25, [tree])
        raw = compile_trees(0.25, [tree])
        assert raw is not None
        for x in (0.5, 0.4999, 0.5001, float("nan"), -math.inf, math.inf):
            assert raw([x]) == scorer.raw([x]), (missing_left, x)
        assert raw([float("nan")]) == (1.25 if missing_left else 2.25)
        assert raw([0.5]) == 1.25  # x <= threshold goes left


def test_non_finite_thresholds_and_values_are_kept_exactly():
    tree = ([0, 0, 0], [math.inf, 0.0, 0.0], [False, False, False], [1, 0, 0], [2, 0, 0],
            [False, True, True], [0.0, -1e-300, 5e-324])
    raw = compile_trees(-0.0, [tree])
    assert raw is not None
    scorer = TreeScorer([("months_active", None)], -0.0, [tree])
    for x in (1e308, math.inf, float("nan")):
        assert raw([x]) == scorer.raw([x])


def test_what_is_not_a_tree_is_walked_not_compiled():
    cycle = ([0, 0], [0.5, 0.5], [False, False], [1, 0], [1, 0], [False, False], [0.0, 0.0])
    assert compile_trees(0.0, [cycle]) is None
    n = MAX_DEPTH + 2  # a chain deeper than the tokenizer's indentation limit
    chain = ([0] * n, [0.5] * n, [False] * n, [i + 1 if i < n - 1 else 0 for i in range(n)], [n - 1] * n,
             [i == n - 1 for i in range(n)], [float(i) for i in range(n)])
    assert compile_trees(0.0, [chain]) is None
    scorer = TreeScorer([("months_active", None)], 0.0, [chain])
    assert scorer.fast_raw([0.0]) == scorer.raw([0.0]) == float(n - 1)  # served by the walk


def test_compile_once_then_serve_compiled_or_walk():
    scorer = from_pipeline(_model())
    assert scorer is not None
    assert scorer.compile() is True and scorer.compile() is True
    x = scorer.vector({})
    assert scorer.fast_raw(x) == scorer.raw(x)
    n = MAX_DEPTH + 2
    deep = ([0] * n, [0.5] * n, [False] * n, [i + 1 if i < n - 1 else 0 for i in range(n)], [n - 1] * n,
            [i == n - 1 for i in range(n)], [float(i) for i in range(n)])
    walked = TreeScorer([("months_active", None)], 0.0, [deep])
    assert walked.compile() is False
    assert walked.probability({"months_active": 0.0}) == 1 / (1 + math.exp(-(n - 1)))  # left to the end
