"""The loop benchmark's sizing: which months it seeds in parts, and the disk it reports."""

from __future__ import annotations

import json
from pathlib import Path

from bench.loop import PART_USERS, STATE_FUNCTIONS, folder_bytes, seed_parts
from bench.run import largest_task_mb, table


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


def test_the_scale_table_names_the_largest_task_of_each_month_size_and_their_ratio():
    def loop(users, *peaks):
        steps = [{"state": f"Step{i}", "seconds": 1.0, "peak_mb": mb} for i, mb in enumerate(peaks)]
        return {"users": users, "median": {"seconds": 9.0, "steps": steps}}

    loops = [loop(100_000, 300.0, 517.0, None), loop(1_000_000, 611.0, 250.0)]
    assert largest_task_mb({e["users"]: e for e in loops}) == {100_000: 517.0, 1_000_000: 611.0}
    assert "largest task: 100,000: 517 MB, 1,000,000: 611 MB (largest / smallest 1.18)" in table({"loop": loops})


def test_every_distributed_map_of_the_pipeline_has_its_line_in_the_scale_table():
    """A Map the benchmark does not know has no peak memory, and the table drops it (SplitParts did)."""
    asl = json.loads((Path(__file__).resolve().parents[2] / "infra" / "statemachine" / "pipeline.asl.json").read_text())

    def maps(states: dict) -> set[str]:
        found = set()
        for name, state in states.items():
            if state["Type"] == "Map":
                found.add(name)
            for branch in state.get("Branches", []):
                found |= maps(branch["States"])
        return found

    pipeline_maps = maps(asl["States"])
    assert {"SplitParts", "ValidateShards", "PublishShards", "ScoreShards"} <= pipeline_maps
    assert pipeline_maps <= set(STATE_FUNCTIONS)


def test_with_the_floor_timed_beside_each_run_the_table_gives_each_runs_ratio_to_its_own_floor():
    loop = {"users": 10_000, "runs": [{"seconds": 4.0}, {"seconds": 6.0}, {"seconds": 5.0}],
            "median": {"seconds": 5.0, "steps": []}}
    floor = {"users": 10_000, "seconds": 2.5, "runs": [2.0, 3.0, 2.5], "steps": {}}
    beside = table({"loop": [loop], "floor": [floor], "floor_beside": True})
    assert "each run / the floor timed right before it: 2.00 2.00 2.00" in beside
    assert "each run / the floor" not in table({"loop": [loop], "floor": [floor]})
