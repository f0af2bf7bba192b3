"""Partitioned months: a table given as numbered parts is checked like the same table given
whole (same typed tables), a bad part is named with its file, column and rule, the layout
rules hold (one form per table, parts without gaps), and the block-wise generator writes a
valid month whose manifest lists every part with the size and SHA-256 of its bytes."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from csv_edit import with_cell
from streamflow.contract import check_month
from streamflow.manifest import Manifest, manifest_for_folder, month_files_in, parse
from streamflow.partitioned_month import BLOCK_USERS, part_bounds, user_ids, write_partitioned_month
from streamflow.parts import group_files, part_name, table_of
from streamflow.schema import MANIFEST_NAME, MONTH_FILES
from streamflow.violations import Violation


def split_month(files: dict[str, bytes], parts: int) -> dict[str, bytes]:
    """A whole month → the same rows as ``parts`` parts a table (header repeated in each)."""
    out: dict[str, bytes] = {}
    for table, body in files.items():
        header, *rows = body.decode().splitlines(keepends=True)
        for index, (start, end) in enumerate(part_bounds(len(rows), parts)):
            out[part_name(table, index)] = (header + "".join(rows[start:end])).encode()
    return out


def test_a_partitioned_month_gives_the_tables_of_the_whole_month(month0_files, month0_tables):
    result = check_month(split_month(month0_files, 4))
    assert result.ok, result.summary()
    for table in MONTH_FILES:
        pd.testing.assert_frame_equal(result.tables[table], month0_tables[table])


def test_tables_may_mix_whole_files_and_parts(month0_files, month0_tables):
    files = dict(month0_files)
    del files["labels.csv"]
    files.update({k: v for k, v in split_month({"labels.csv": month0_files["labels.csv"]}, 3).items()})
    result = check_month(files)
    assert result.ok, result.summary()
    pd.testing.assert_frame_equal(result.tables["labels.csv"], month0_tables["labels.csv"])


def test_a_bad_value_is_named_by_part_file_column_and_rule(month0_files):
    files = split_month(month0_files, 3)
    bad = "usage_agg_30d/part-00002.csv"
    files[bad] = with_cell(files[bad], "skips_7d", 4, "-3")
    result = check_month(files)
    assert [(v.file, v.column, v.rule) for v in result.violations] == [(bad, "skips_7d", "must not be negative")]
    assert result.violations[0].example.startswith("row 6 ")  # the part's own row: header = row 1


def test_a_user_repeated_in_two_parts_is_found(month0_files):
    files = split_month(month0_files, 3)
    first = files["labels/part-00000.csv"].decode().splitlines()[1]
    files["labels/part-00002.csv"] += (first + "\n").encode()
    result = check_month(files)
    (violation,) = result.violations
    rows_in_part = len(files["labels/part-00002.csv"].decode().splitlines())  # the header is row 1
    assert violation == Violation("labels/part-00002.csv", "user_id", "user_id must be unique",
                                  f"row {rows_in_part} value {first.split(',')[0]!r}, also in an earlier row or part")


def test_bad_values_in_several_parts_are_all_named(month0_files):
    files = split_month(month0_files, 3)
    for part, row in (("usage_agg_30d/part-00000.csv", 1), ("usage_agg_30d/part-00002.csv", 4)):
        files[part] = with_cell(files[part], "skips_7d", row, "-3")
    assert [(v.file, v.example) for v in check_month(files).violations] == [
        ("usage_agg_30d/part-00000.csv", "row 3 value -3"), ("usage_agg_30d/part-00002.csv", "row 6 value -3")]


def test_an_orphan_row_names_its_part_and_row_and_a_missing_row_its_table_folder(month0_files):
    files = split_month(month0_files, 2)
    header, *support = files["support_agg_90d/part-00001.csv"].decode().splitlines()
    files["support_agg_90d/part-00001.csv"] = "\n".join([header, *support, "0000-ZZZZZ,1,2.0"]).encode() + b"\n"
    header, *labels = files["labels/part-00000.csv"].decode().splitlines()
    files["labels/part-00000.csv"] = "\n".join([header, *labels[1:]]).encode() + b"\n"
    where = {(v.file, v.rule, v.example) for v in check_month(files).violations}
    orphan_row = len(support) + 2  # appended after the part's rows; the header is row 1
    assert where == {("labels/", "every user in users.csv needs a row here", f"missing {labels[0].split(',')[0]!r}"),
                     ("support_agg_90d/part-00001.csv", "user_id must exist in users.csv",
                      f"row {orphan_row} value '0000-ZZZZZ'")}


def test_one_form_per_table_and_no_gaps_in_the_parts(month0_files):
    both = dict(split_month(month0_files, 2), **{"users.csv": month0_files["users.csv"]})
    violations = check_month(both).violations
    assert [v.file for v in violations] == ["users.csv"] and "whole and in parts" in violations[0].rule
    gap = split_month(month0_files, 3)
    del gap["labels/part-00001.csv"]
    (violation,) = check_month(gap).violations
    assert violation == Violation("labels/", "", "parts must be numbered from part-00000 without gaps",
                                  "missing labels/part-00001.csv")


def test_names_that_are_not_parts_are_unknown_files(month0_files):
    files = dict(split_month(month0_files, 2), **{"users/notes.csv": b"x", "videos/part-00000.csv": b"x"})
    assert [v for v in check_month(files).violations if v.rule == "unknown file"] == [
        Violation("users/notes.csv", "", "unknown file"), Violation("videos/part-00000.csv", "", "unknown file")]
    assert table_of("users/part-00000.csv") == "users.csv" and table_of("users/part-0.csv") is None
    grouped, unknown, layout = group_files(["users/part-00001.csv", "users/part-00000.csv", "labels.csv"])
    assert grouped == {"users.csv": ["users/part-00000.csv", "users/part-00001.csv"], "labels.csv": ["labels.csv"]}
    assert unknown == [] and layout == []


def test_the_manifest_accepts_part_names_only_in_their_form():
    sha = "0" * 64
    body = json.dumps({"month": "month_001", "files": {"users/part-00000.csv": {"bytes": 1, "sha256": sha}}})
    assert list(parse("k", body.encode(), "month_001").files) == ["users/part-00000.csv"]
    for name in ("users/part-1.csv", "users/sub/part-00000.csv", "Users/part-00000.csv"):
        with pytest.raises(ValueError):
            parse("k", json.dumps({"month": "month_001", "files": {name: {"bytes": 1, "sha256": sha}}}).encode(),
                  "month_001")


# --- the block-wise generator --------------------------------------------------------------------


def test_ids_are_distinct_across_blocks_and_the_same_whatever_the_parts():
    ids = user_ids(42, 0, 3 * BLOCK_USERS)
    assert len(set(ids)) == len(ids) and all(len(i) == 10 and i[4] == "-" for i in ids[:100])
    assert list(user_ids(42, BLOCK_USERS - 2, 4)) == list(ids[BLOCK_USERS - 2:BLOCK_USERS + 2])
    assert list(user_ids(7, 0, 5)) != list(ids[:5])


def test_the_generator_writes_a_valid_month_part_by_part(tmp_path):
    folder = write_partitioned_month(tmp_path, 1, n_users=1200, parts=3)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    Manifest.model_validate(manifest)
    files = {name: path.read_bytes() for name, path in month_files_in(folder)}
    assert sorted(manifest["files"]) == sorted(files) and len(files) == 3 * len(MONTH_FILES)
    for name, body in files.items():
        assert manifest["files"][name] == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert manifest_for_folder(folder)["files"] == manifest["files"]
    result = check_month(files)
    assert result.ok, result.summary()
    assert len(result.tables["users.csv"]) == 1200
    assert [len(files[part_name("users.csv", p)].splitlines()) - 1 for p in range(3)] == [400, 400, 400]
    again = write_partitioned_month(tmp_path / "again", 1, n_users=1200, parts=2)
    rejoined = check_month({n: p.read_bytes() for n, p in month_files_in(again)})
    pd.testing.assert_frame_equal(rejoined.tables["labels.csv"], result.tables["labels.csv"])  # parts do not matter


def test_users_keep_their_traits_across_months(tmp_path):
    months = [check_month({n: p.read_bytes() for n, p in month_files_in(
        write_partitioned_month(tmp_path, m, n_users=300, parts=2))}).tables for m in (0, 1)]
    pd.testing.assert_frame_equal(months[0]["users.csv"].drop(columns="signup_date"),
                                  months[1]["users.csv"].drop(columns="signup_date"))
    assert (months[0]["usage_agg_30d.csv"]["watch_hours_30d"].mean()
            > months[1]["usage_agg_30d.csv"]["watch_hours_30d"].mean())  # month_001 drifts, as generate_month's


def test_parts_must_fit_the_users(tmp_path):
    with pytest.raises(ValueError, match="parts"):
        write_partitioned_month(tmp_path, 0, n_users=5, parts=6)


def test_streamflow_seed_writes_parts_and_manifest_writes_the_same_manifest(tmp_path, capsys):
    from streamflow_local import cli

    assert cli.main(["seed", "--out", str(tmp_path), "--months", "2", "--users", "120", "--parts", "3"]) == 0
    capsys.readouterr()
    for month in ("month_000", "month_001"):
        folder = tmp_path / month
        written = json.loads((folder / MANIFEST_NAME).read_text())
        assert sorted(written["files"]) == sorted(part_name(t, p) for t in MONTH_FILES for p in range(3))
        assert cli.main(["manifest", str(folder), "--stdout"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["files"] == written["files"]
