"""The validation split: stable per user, about 20 %, disjoint and complete."""

import pandas as pd
import pytest

from streamflow.split import VALIDATION_PERCENT, is_validation_user, split_by_user

IDS = [f"{d:04d}-{chr(65 + d % 26)}{chr(65 + d // 26 % 26)}QRS" for d in range(10_000)]


def test_the_same_user_gets_the_same_answer_every_call():
    first = [is_validation_user(u) for u in IDS[:2000]]
    assert [is_validation_user(u) for u in IDS[:2000]] == first


def test_about_twenty_percent_of_many_users_are_held_out():
    assert VALIDATION_PERCENT == 20
    share = sum(is_validation_user(u) for u in IDS) / len(IDS)
    assert 0.18 < share < 0.22


def test_percent_bounds():
    assert not any(is_validation_user(u, 0) for u in IDS[:500])
    assert all(is_validation_user(u, 100) for u in IDS[:500])


def test_a_larger_percent_keeps_the_smaller_holdout():
    small = {u for u in IDS if is_validation_user(u, 10)}
    large = {u for u in IDS if is_validation_user(u, 30)}
    assert small < large


def test_split_is_disjoint_and_complete():
    frame = pd.DataFrame({"x": range(len(IDS))}, index=pd.Index(IDS, name="user_id"))
    train, validation = split_by_user(frame)
    assert set(train.index).isdisjoint(validation.index)
    assert len(train) + len(validation) == len(frame)
    assert set(train.index) | set(validation.index) == set(frame.index)
    assert all(is_validation_user(u) for u in validation.index)
    assert not any(is_validation_user(u) for u in train.index)
    # Rows keep their values.
    assert (validation["x"] == frame.loc[validation.index, "x"]).all()


def test_a_user_is_held_out_whatever_else_is_in_the_frame():
    a = pd.DataFrame({"x": 0}, index=pd.Index(IDS[:300], name="user_id"))
    b = pd.DataFrame({"x": 0}, index=pd.Index(IDS[150:450][::-1], name="user_id"))
    common = set(a.index) & set(b.index)
    va, vb = split_by_user(a)[1], split_by_user(b)[1]
    assert set(va.index) & common == set(vb.index) & common


@pytest.mark.parametrize("user", ["7590-VHVEG", "5575-GNVDE"])
def test_answer_is_stable_across_processes_as_a_hash_of_the_id(user):
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", f"from streamflow.split import is_validation_user as f; print(f({user!r}))"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert out.stdout.strip() == str(is_validation_user(user))
