"""The champion's trees as one Python function of nested ``if``s: the same comparisons and
the same additions, in the same order, as ``TreeScorer.raw``'s walk, without its per-node
list indexing and loop (≈ 4× fewer bytecodes a row). /predict scores one row and
/predict/batch a thousand; both go through this when it compiles, the walk otherwise.

The source is made from numbers only: feature indexes pass ``int`` and thresholds and leaf
values ``float`` (written with ``repr``, which reads back to the same double; a non-finite
one is a constant passed in), so nothing from the scorer file is ever run as code.
NaN goes where ``missing_go_to_left`` says: ``x <= t`` is false for NaN (goes right), and
``not x > t`` is true for NaN (goes left); for every other value both mean ``x <= t``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

# The tokenizer refuses more than 100 levels of indentation; a deeper tree is walked.
MAX_DEPTH = 90

RawScore = Callable[[Sequence[float]], float]


def compile_trees(baseline: float, trees: Sequence[tuple]) -> RawScore | None:
    """``x → baseline + Σ leaf values``, or None if a tree is too deep (or not a tree)."""
    constants: list[float] = []
    body: list[str] = []
    for tree in trees:
        if not _emit_tree(tree, body, constants):
            return None
    used = sorted({int(f) for tree in trees for f, is_leaf in zip(tree[0], tree[5]) if not is_leaf})
    # each feature read once into a local (LOAD_FAST), not indexed at every node
    lines = ["def raw(x):", *(f"    x{f} = x[{f}]" for f in used),
             f"    total = {_number(float(baseline), constants)}", *body, "    return total"]
    namespace: dict[str, object] = {"_c": tuple(constants)}
    exec(compile("\n".join(lines), "<tree_scorer>", "exec"), namespace)  # noqa: S102 - numbers only, see above
    return namespace["raw"]  # type: ignore[return-value]


def _number(value: float, constants: list[float]) -> str:
    if math.isfinite(value):
        return repr(value)
    constants.append(value)
    return f"_c[{len(constants) - 1}]"


def _emit_tree(tree: tuple, lines: list[str], constants: list[float]) -> bool:
    feature, threshold, missing_left, left, right, leaf, value = tree
    # (node, depth, prefix line) in the order the source is written: depth-first, left first
    stack: list[tuple[int, int, str | None]] = [(0, 1, None)]
    budget = len(leaf)  # a tree reaches each node once: more means it is not a tree
    while stack:
        node, depth, before = stack.pop()
        budget -= 1
        if depth > MAX_DEPTH or budget < 0:
            return False
        pad = "    " * depth
        if before is not None:
            lines.append("    " * (depth - 1) + before)
        if leaf[node]:
            lines.append(f"{pad}total += {_number(float(value[node]), constants)}")
            continue
        column, cut = int(feature[node]), _number(float(threshold[node]), constants)
        test = f"not x{column} > {cut}" if missing_left[node] else f"x{column} <= {cut}"
        lines.append(f"{pad}if {test}:")
        stack.append((int(right[node]), depth + 1, "else:"))
        stack.append((int(left[node]), depth + 1, None))
    return True
