"""The held-out users, pinned: a fixed list of ids and whether each is in the validation split.

The split must never change silently: a different held-out set lets a champion be judged on
users it trained on, and every statistical test in test_split.py would still pass (any
stable hash gives "about 20 %", disjoint and complete). So the expected answers below were
computed once, by hand, from the definition in split.py and are written out here:

    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    value  = int.from_bytes(digest[:8], "big") % 100       # the FIRST 8 bytes, big-endian
    held out  <=>  value < percent                           # percent = 20

e.g. ``python3 -c "import hashlib; d = hashlib.sha256(b'3668-QPYBK').digest(); print(d[:8].hex(),
int.from_bytes(d[:8], 'big') % 100)"`` prints ``701bf78bdf332d16 6``: held out.

The table keeps the first 8 bytes and the value, so a reader can check any row without
running the code. The last four ids sit on the boundaries (values 0, 19, 20, 99).
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from streamflow.split import VALIDATION_PERCENT, is_validation_user, split_by_user

# (user_id, sha256(user_id)[:8] in hex, that as a big-endian integer % 100)
KNOWN = [
    ("7590-VHVEG", "f3f9002e121cbbcc", 80),
    ("5575-GNVDE", "5f362546eb7515f4", 68),
    ("3668-QPYBK", "701bf78bdf332d16", 6),
    ("7795-CFOCW", "59a0e1b332a6b6ba", 2),
    ("9237-HQITU", "66370db9e1bb6a85", 1),
    ("9305-CDSKC", "009b50fc33f819ed", 33),
    ("1452-KIOVK", "ac2cf334bdc5a53a", 30),
    ("6713-OKOMC", "1619db8427111295", 1),
    ("7892-POOKP", "eb988ab508dd6a2d", 1),
    ("6388-TABGU", "27f1c6227928e457", 43),
    ("9763-GRSKD", "996bda4a4360449a", 62),
    ("7469-LKBCI", "1548ef706daa276f", 63),
    ("8091-TTVAX", "b60a65c42a404bca", 82),
    ("0280-XJGEX", "382c801e5f7a5686", 50),
    ("5129-JLPIS", "13f3970472ced700", 32),
    ("3655-SNQYZ", "73fe8186c2d216b2", 6),
    ("8191-XWSZG", "262df9e8dbfcaa70", 92),
    ("9959-WOFKT", "8b0682d87cb1fb47", 39),
    ("4190-MFLUW", "88f04c7a16f4849a", 6),
    ("4183-MYFRB", "4dd7e64e8be5b6a8", 8),
    ("0023-XAAKQ", "86537d9dd0b9349c", 0),
    ("0071-TCAKQ", "d92a7b7705e23243", 19),
    ("0012-MAAKQ", "8dda66e3cedaca24", 20),
    ("0030-EBAKQ", "59b35fb11cebdc83", 99),
]
# Written out, not derived from KNOWN: the held-out users at the default 20 %.
HELD_OUT_AT_20 = {"3668-QPYBK", "7795-CFOCW", "9237-HQITU", "6713-OKOMC", "7892-POOKP", "3655-SNQYZ",
                  "4190-MFLUW", "4183-MYFRB", "0023-XAAKQ", "0071-TCAKQ"}


def test_the_table_is_the_definition():
    """The documented digests and values are what sha256 gives (guards the table itself)."""
    for user_id, prefix, value in KNOWN:
        digest = hashlib.sha256(user_id.encode("utf-8")).digest()
        assert digest[:8].hex() == prefix, user_id
        assert int(prefix, 16) % 100 == value, user_id
    assert HELD_OUT_AT_20 == {u for u, _, value in KNOWN if value < 20}


def test_the_held_out_users_at_the_default_percent():
    assert VALIDATION_PERCENT == 20
    assert {u for u, _, _ in KNOWN if is_validation_user(u)} == HELD_OUT_AT_20


@pytest.mark.parametrize(("percent", "held_out"), [
    (1, {"0023-XAAKQ"}),
    (2, {"9237-HQITU", "6713-OKOMC", "7892-POOKP", "0023-XAAKQ"}),
    (7, {"3668-QPYBK", "7795-CFOCW", "9237-HQITU", "6713-OKOMC", "7892-POOKP", "3655-SNQYZ", "4190-MFLUW",
         "0023-XAAKQ"}),
    (21, HELD_OUT_AT_20 | {"0012-MAAKQ"}),
    (99, {u for u, _, _ in KNOWN} - {"0030-EBAKQ"}),
])
def test_the_held_out_users_at_other_percents(percent, held_out):
    assert {u for u, _, _ in KNOWN if is_validation_user(u, percent)} == held_out


def test_split_by_user_holds_out_exactly_those_users():
    frame = pd.DataFrame({"x": range(len(KNOWN))}, index=pd.Index([u for u, _, _ in KNOWN], name="user_id"))
    train, validation = split_by_user(frame)
    assert set(validation.index) == HELD_OUT_AT_20
    assert set(train.index) == set(frame.index) - HELD_OUT_AT_20
    assert list(train["x"]) == [i for i, (u, _, _) in enumerate(KNOWN) if u not in HELD_OUT_AT_20]
    assert set(split_by_user(frame, percent=21)[1].index) == HELD_OUT_AT_20 | {"0012-MAAKQ"}
