"""ROC AUC over many shards, exact: the shards' (score, label) pairs concatenated.

AUC is a statistic of all (positive, negative) pairs of the holdout, so it cannot be averaged
over shards. Each shard's holdout is scored on its own (memory: one shard's features) and
keeps only its scores and labels (9 bytes a holdout user); the AUC of the concatenation is
scikit-learn's ``roc_auc_score`` on the same multiset of pairs as the whole holdout, ties
included, so it is the one-shot value, not an approximation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ScorePairs:
    """(score, label) pairs gathered shard by shard."""

    scores: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)

    def add(self, scores: np.ndarray, labels: np.ndarray) -> None:
        if len(scores) != len(labels):
            raise ValueError(f"{len(scores)} scores for {len(labels)} labels")
        self.scores.append(np.asarray(scores, dtype=np.float64))
        self.labels.append(np.asarray(labels, dtype=np.int8))

    def __len__(self) -> int:
        return sum(len(s) for s in self.scores)

    def auc(self) -> float:
        """ROC AUC of every pair added; NaN when the pairs hold a single class (as ``evaluate_auc``)."""
        from sklearn.metrics import roc_auc_score

        labels = np.concatenate(self.labels) if self.labels else np.zeros(0, dtype=np.int8)
        if len(np.unique(labels)) < 2:
            return float("nan")
        return float(roc_auc_score(labels, np.concatenate(self.scores)))
