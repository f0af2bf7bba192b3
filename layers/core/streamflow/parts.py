"""Partitioned months: a table may arrive whole or as numbered parts.

A month's table is either one CSV (``months/<month>/usage_agg_30d.csv``, as always) or a
folder of parts (``months/<month>/usage_agg_30d/part-00000.csv``, ``part-00001.csv`` …),
each part a CSV with the table's header and some of its rows. Parts let a month too big for
one file be written, uploaded and checked a part at a time; the manifest lists every part
with its size and SHA-256 under that relative name. A table is given one way or the other,
never both, and its parts are numbered from ``part-00000`` without gaps.

Pure: names in, tables and violations out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .schema import TABLE_COLUMNS
from .violations import Violation

PART_NAME = re.compile(r"^(?P<folder>[a-z0-9_]+)/part-(?P<index>\d{5})\.csv$")
MAX_PARTS = 100_000  # five digits


def folder_of(table: str) -> str:
    """``usage_agg_30d.csv`` → ``usage_agg_30d``: the folder that holds the table's parts."""
    return table.removesuffix(".csv")


def part_name(table: str, index: int) -> str:
    """``("users.csv", 3)`` → ``users/part-00003.csv``."""
    if not 0 <= index < MAX_PARTS:
        raise ValueError(f"part index {index} out of range 0..{MAX_PARTS - 1}")
    return f"{folder_of(table)}/part-{index:05d}.csv"


def table_of(name: str) -> str | None:
    """The table a file name belongs to (``users.csv`` or ``users/part-00000.csv`` →
    ``users.csv``), None for a name that is neither."""
    if name in TABLE_COLUMNS:
        return name
    match = PART_NAME.match(name)
    if match and f"{match['folder']}.csv" in TABLE_COLUMNS:
        return f"{match['folder']}.csv"
    return None


def is_part(name: str) -> bool:
    return PART_NAME.match(name) is not None and table_of(name) is not None


def group_files(names: Iterable[str]) -> tuple[dict[str, list[str]], list[str], list[Violation]]:
    """File names → ({table: its file names in row order}, unknown names, layout violations).

    A table is its one CSV or its parts in index order. Given both ways, or with a gap in
    the part numbers, the table is a violation (and left out of the grouping)."""
    tables: dict[str, list[str]] = {}
    unknown: list[str] = []
    for name in sorted(names):
        table = table_of(name)
        if table is None:
            unknown.append(name)
        else:
            tables.setdefault(table, []).append(name)
    violations: list[Violation] = []
    for table, files in list(tables.items()):
        parts = [f for f in files if f != table]
        if not parts:
            continue
        if table in files:
            violations.append(Violation(table, "", f"the table is given whole and in parts ({folder_of(table)}/); "
                                                   "upload one or the other"))
            del tables[table]
            continue
        indexes = [int(PART_NAME.match(p)["index"]) for p in parts]  # type: ignore[index]
        missing = sorted(set(range(len(parts))) - set(indexes))
        if missing:
            violations.append(Violation(f"{folder_of(table)}/", "", "parts must be numbered from part-00000 "
                                        "without gaps", f"missing {part_name(table, missing[0])}"))
            del tables[table]
            continue
        tables[table] = sorted(parts)
    return tables, unknown, violations
