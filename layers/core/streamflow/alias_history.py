"""Who moved which registry alias, when and why: kept on each model version's tags.

MLflow keeps no history of alias moves, so every move (``alias_moves``) appends an entry
to a JSON list in the version's ``alias_history`` tag and spells out the latest move in
plain tags (``production_action``, ``production_at``, ...) that the MLflow UI shows.
"""

from __future__ import annotations

import json
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


def record_alias_move(tracking_uri: str, model_name: str, version: str, alias: str, action: str,
                      by: str, reason: str, at: str, **details: Any) -> None:
    """Append who moved which alias onto/off this version, when and why, to its tags."""
    mlflow_client = registry.client(tracking_uri)
    current = mlflow_client.get_model_version(model_name, version).tags.get(HISTORY_TAG, "[]")
    entry = {"alias": alias, "action": action, "at": at, "by": by, "reason": reason,
             **{k: v for k, v in details.items() if v is not None}}
    prefix = alias.lower()
    registry.set_version_tags(mlflow_client, model_name, version, {
        HISTORY_TAG: appended_history(current, entry),
        **{f"{prefix}_{key}": str(value)[:TAG_VALUE_LIMIT]
           for key, value in (("action", action), ("at", at), ("by", by), ("reason", reason))},
    })
