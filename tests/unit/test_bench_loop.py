"""The loop benchmark's sizing: which months it seeds in parts, and the disk it reports."""

from __future__ import annotations

from pathlib import Path

from bench.loop import PART_USERS, STATE_FUNCTIONS, folder_bytes, seed_parts


def test_months_over_a_part_are_seeded_in_parts_of_at_most_part_users():
    assert seed_parts(10_000) is None and seed_parts(PART_USERS) is None
    assert seed_parts(PART_USERS + 1) == 2
    assert seed_parts(1_000_000) == 4 and seed_parts(5_000_000) == 20


def test_folder_bytes_counts_every_file_below_it(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x").write_bytes(b"1" * 300)
    (tmp_path / "y").write_bytes(b"2" * 45)
    assert folder_bytes(tmp_path) == 345


def test_the_shards_map_line_carries_the_peaks_of_both_functions_it_runs():
    assert set(STATE_FUNCTIONS["ValidateShards"]) == {"ValidateFunction", "FeaturesFunction"}
