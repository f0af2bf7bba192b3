"""The alias history kept on a model version's tag: newest entries last, at most
HISTORY_KEEP of them, and never more than MLflow's 5,000 characters a tag value."""

from __future__ import annotations

import json

from streamflow.alias_history import HISTORY_KEEP, TAG_VALUE_LIMIT, appended_history


def _entry(i: int, reason: str = "drift") -> dict:
    return {"alias": "Production", "action": "set", "at": f"2026-01-{i:02d}T00:00:00Z", "by": "promote",
            "reason": reason, "n": i}


def test_the_first_move_starts_the_history():
    assert json.loads(appended_history("[]", _entry(1))) == [_entry(1)]


def test_entries_are_appended_in_order_up_to_the_cap():
    assert HISTORY_KEEP == 10 and TAG_VALUE_LIMIT == 5000
    tag = "[]"
    for i in range(1, 11):
        tag = appended_history(tag, _entry(i))
    assert [e["n"] for e in json.loads(tag)] == list(range(1, 11))


def test_past_the_cap_the_oldest_entries_are_dropped():
    tag = "[]"
    for i in range(1, 26):
        tag = appended_history(tag, _entry(i))
        assert len(json.loads(tag)) == min(i, HISTORY_KEEP)
    assert [e["n"] for e in json.loads(tag)] == list(range(16, 26))


def test_long_entries_are_dropped_oldest_first_to_fit_a_tag_value():
    tag = "[]"
    for i in range(1, 8):
        tag = appended_history(tag, _entry(i, reason="r" * 1500))
        assert len(tag) <= TAG_VALUE_LIMIT
    kept = [e["n"] for e in json.loads(tag)]
    assert kept == [5, 6, 7]  # three entries of ~1,600 characters fit, four do not
    assert len(appended_history(json.dumps([_entry(1, "r" * 4800)]), _entry(2))) <= TAG_VALUE_LIMIT


def test_an_entry_that_fits_exactly_is_kept():
    first = _entry(1)
    probe = json.dumps([first, _entry(2, "")], separators=(",", ":"))
    second = _entry(2, "r" * (TAG_VALUE_LIMIT - len(probe)))
    tag = appended_history(json.dumps([first], separators=(",", ":")), second)
    assert len(tag) == TAG_VALUE_LIMIT and [e["n"] for e in json.loads(tag)] == [1, 2]


def test_the_tag_is_compact_json():
    assert appended_history("[]", {"a": 1, "b": [1, 2]}) == '[{"a":1,"b":[1,2]}]'


def test_an_unreadable_or_foreign_tag_restarts_the_history():
    for current in ("not json", "{}", '{"alias": "Production"}', "", "null"):
        assert json.loads(appended_history(current, _entry(3))) == [_entry(3)], current
