"""Who moved which registry alias, when and why: kept on each model version's tags.

MLflow keeps no history of alias moves, so every move (``alias_moves``) appends an entry
to a JSON list in the version's ``alias_history`` tag and spells out the latest move of each
alias in one plain tag named after it, which the MLflow UI shows as a sentence
(``production``: ``removed 2026-12-01T07:00:00+00:00 by <execution>: <reason>``).

One tag per alias, not one per field: each tag is a registry call (≈ 10 ms here), and a
crowning writes two versions' tags. Versions tagged before (``production_action``,
``production_at``, ``production_by``, ``production_reason``) lose those four when their
alias moves again, so no stale field contradicts the sentence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import registry

HISTORY_TAG = "alias_history"
HISTORY_KEEP = 10  # entries kept in the tag (MLflow caps tag values at 5,000 characters)
TAG_VALUE_LIMIT = 5000


def appended_history(current: str, entry: dict[str, Any]) -> str:
    """The history tag's value with ``entry`` appended: the newest ``HISTORY_KEEP`` entries,
    fewer when they would not fit MLflow's 5,000 characters (an unreadable tag restarts)."""
    try:
        history = json.loads(current)
    except ValueError:
        history = []
    if not isinstance(history, list):
        history = []
    history = (history + [entry])[-HISTORY_KEEP:]
    encoded = json.dumps(history, separators=(",", ":"))
    while len(encoded) > TAG_VALUE_LIMIT and len(history) > 1:
        history = history[1:]
        encoded = json.dumps(history, separators=(",", ":"))
    return encoded


@dataclass(frozen=True)
class AliasMove:
    """One alias moved onto (``set``) or off (``removed``) a version, by whom, when and why."""

    alias: str
    action: str
    by: str
    reason: str
    at: str
    details: dict[str, Any] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        return {"alias": self.alias, "action": self.action, "at": self.at, "by": self.by, "reason": self.reason,
                **{k: v for k, v in self.details.items() if v is not None}}

    def plain_tag(self) -> tuple[str, str]:
        """(the alias in lower case, the move as a sentence)."""
        return self.alias.lower(), f"{self.action} {self.at} by {self.by}: {self.reason}"[:TAG_VALUE_LIMIT]


FIELD_TAGS = ("action", "at", "by", "reason")  # the plain tags of before: one per field


def replaced_field_tags(tags: dict[str, str], moves: list[AliasMove]) -> list[str]:
    """The per-field plain tags of the moved aliases that a version still carries."""
    return [name for move in moves for field in FIELD_TAGS
            if (name := f"{move.alias.lower()}_{field}") in tags]


def record_alias_moves(tracking_uri: str, model_name: str, version: str, moves: list[AliasMove]) -> None:
    """Append the moves, in order, to one version's history and plain tags: one read of the
    version and one write per tag, however many moves (a crowning takes Production off the
    old champion and gives it Previous: two moves, the history read and written once)."""
    mlflow_client = registry.client(tracking_uri)
    tags = mlflow_client.get_model_version(model_name, version).tags or {}
    history = tags.get(HISTORY_TAG, "[]")
    plain: dict[str, str] = {}
    for move in moves:
        history = appended_history(history, move.entry())
        alias, sentence = move.plain_tag()
        plain[alias] = sentence
    registry.set_version_tags(mlflow_client, model_name, version, {HISTORY_TAG: history, **plain})
    for name in replaced_field_tags(tags, moves):
        registry.delete_version_tag(mlflow_client, model_name, version, name)


def record_alias_move(tracking_uri: str, model_name: str, version: str, alias: str, action: str,
                      by: str, reason: str, at: str, **details: Any) -> None:
    """Append who moved which alias onto/off this version, when and why, to its tags."""
    record_alias_moves(tracking_uri, model_name, version, [AliasMove(alias, action, by, reason, at, details)])
