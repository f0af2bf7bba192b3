"""The champion's trees as plain data: churn probability without pandas or scikit-learn.

This is the serving side. ``probability`` builds the feature vector in Python and walks
each tree as scikit-learn's predictor does (``x <= threshold`` goes left, NaN follows
``missing_go_to_left``), summing onto the baseline in the same order, then the logistic.

The scorer travels as JSON beside the model (``extra_files/tree_scorer.json``): no code
runs when it is read, unlike a pickle or skops file, so the API never imports
scikit-learn, SciPy or skops on cold start. ``scorer_export`` (training side, with
scikit-learn) makes it from the fitted pipeline and checks it against ``predict_proba``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

from .schema import BOOLEAN_FEATURES, MODEL_FEATURES
from .scorer_compiled import RawScore, compile_trees

FILE_NAME = "tree_scorer.json"
# From this many rows ``probabilities`` scores with NumPy (``scorer_vector``) when it is
# there: below it the compiled trees are as fast (100 rows: 2.5 against 3.2 ms; 1 row: 1 ms
# against 0.03 ms).
VECTOR_MIN_ROWS = 200
FORMAT = "streamflow.tree_scorer/1"
TOLERANCE = 1e-9


class TreeScorer:
    def __init__(self, columns: list[tuple[str, str | None]], baseline: float, trees: list[tuple]):
        self._columns = [(c, k) for c, k in columns]
        self._baseline = float(baseline)
        self._trees = [tuple(tree) for tree in trees]
        self._compiled: RawScore | None | bool = False  # False: not tried yet (see ``scorer_compiled``)
        self._vectorised: Any = False  # False: not tried yet; None: no NumPy or not trees (``scorer_vector``)

    @property
    def columns(self) -> list[tuple[str, str | None]]:
        """The pipeline's output columns: (feature, one-hot category or None)."""
        return list(self._columns)

    @property
    def trees(self) -> list[tuple]:
        """Each tree as parallel node arrays (feature, threshold, missing_left, left, right, leaf, value)."""
        return list(self._trees)

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

    def compile(self) -> bool:
        """Compile the trees to Python once (``scorer_compiled``); False if they do not
        compile, and then ``fast_raw`` walks them."""
        if self._compiled is False:
            try:
                self._compiled = compile_trees(self._baseline, self._trees)
            except (SyntaxError, RecursionError, MemoryError, ValueError, TypeError, IndexError):
                self._compiled = None
        return self._compiled is not None

    def fast_raw(self, x: list[float]) -> float:
        """``raw`` through the compiled trees (the same float, ≈ 5× faster); the walk when
        they do not compile."""
        if self._compiled is False:
            self.compile()
        compiled = self._compiled
        return compiled(x) if callable(compiled) else self.raw(x)

    def vectorised(self) -> Any:
        """The trees as NumPy arrays (``scorer_vector.VectorTrees``), built once; None where
        NumPy is not installed or the trees do not convert (then rows are scored one by one)."""
        if self._vectorised is False:
            try:
                from .scorer_vector import VectorTrees
            except ImportError:
                self._vectorised = None
            else:
                self._vectorised = VectorTrees.build(self._baseline, self._trees, len(self._columns))
        return self._vectorised

    def raw_many(self, vectors: list[list[float]]) -> list[float]:
        """``raw`` of each vector: with NumPy for ``VECTOR_MIN_ROWS`` or more, the compiled
        trees otherwise; the same floats either way (``tests/unit/test_scorer_vector.py``)."""
        if len(vectors) >= VECTOR_MIN_ROWS:
            trees = self.vectorised()
            if trees is not None:
                return trees.raw(vectors)
        return [self.fast_raw(x) for x in vectors]

    def probability(self, row: dict[str, Any]) -> float:
        return _logistic(self.fast_raw(self.vector(row)))

    def probabilities(self, rows: dict[str, dict[str, Any]]) -> dict[str, float]:
        return self.probabilities_of([rows])

    def probabilities_of(self, parts: Iterable[dict[str, dict[str, Any]]]) -> dict[str, float]:
        """``probabilities`` of rows that arrive in parts (``online_store.iter_online_rows``):
        each part's feature vectors are built as it arrives, while the other reads are still
        under way, and all rows are then scored in one call (one NumPy walk of 1,000 rows
        costs about what one of 100 does). A key in two parts is scored once, as the last."""
        vectors: dict[str, list[float]] = {}
        for part in parts:
            for key, row in part.items():
                vectors[key] = self.vector(row)
        raws = self.raw_many(list(vectors.values()))
        return {key: _logistic(raw) for key, raw in zip(vectors, raws)}

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


def _logistic(raw: float) -> float:
    """The probability of a raw score, in Python's ``math`` for both paths (NumPy's ``exp``
    may differ from it in the last bit)."""
    if raw >= 0:
        return 1.0 / (1.0 + math.exp(-raw))
    z = math.exp(raw)
    return z / (1.0 + z)
