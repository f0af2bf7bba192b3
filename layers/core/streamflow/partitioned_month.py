"""Generate a partitioned month a block of users at a time: any size, bounded memory.

``generator.generate_month`` draws every column for all users at once (and keeps a set of
ids to make them unique), which holds the whole month in memory. This writer draws users in
fixed blocks of ``BLOCK_USERS``: a block's stable traits come from a random stream of its
own (seed, block), its month behaviour from (seed, month, block), and user ids from a
bijection of the user's index, so ids are unique without remembering them and the same
user has the same id and traits in every month, whatever the number of parts. Each part's
CSVs are written and hashed as the blocks arrive; the manifest is written last.

The months are StreamFlow months (same columns, drift and churn concept as
``generator``), deterministic in (seed, users, month, parts), but not the same rows as
``generate_month`` makes for the same seed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .generator import _LETTERS, DEFAULT_SEED, _month_tables
from .parts import part_name
from .schema import MANIFEST_NAME, MONTH_FILES, month_name

BLOCK_USERS = 50_000
_ID_SPACE = 10_000 * 26**5  # ids look like 7590-VHVEG: 4 digits, 5 capital letters
_ID_STEP = 2_654_435_761  # a prime that divides none of 2, 5, 13: i → (i·step + offset) mod space is a bijection
_BLOCK_TAG = 7  # keeps the block streams apart from generate_month's [seed, k] streams


def user_ids(seed: int, start: int, count: int) -> np.ndarray:
    """The ids of users ``start`` … ``start + count - 1``; distinct for distinct indexes."""
    offset = int.from_bytes(hashlib.sha256(f"streamflow-ids-{seed}".encode()).digest()[:8], "big") % _ID_SPACE
    index = np.arange(start, start + count, dtype=np.int64)
    code = (index * _ID_STEP % _ID_SPACE + offset) % _ID_SPACE
    digits, letters = np.divmod(code, 26**5)
    columns = []
    for _ in range(5):
        letters, remainder = np.divmod(letters, 26)
        columns.append(_LETTERS[remainder])
    tails = np.char.add(np.char.add(np.char.add(np.char.add(columns[4], columns[3]), columns[2]), columns[1]),
                        columns[0])
    return np.char.add(np.char.add(np.char.zfill(digits.astype(str), 4), "-"), tails).astype(object)


def block_tables(month: int, block: int, n_users: int, seed: int = DEFAULT_SEED) -> dict[str, pd.DataFrame]:
    """The six tables for block ``block`` of a month of ``n_users`` users."""
    start = block * BLOCK_USERS
    count = min(BLOCK_USERS, n_users - start)
    if count < 1:
        raise ValueError(f"block {block} is past the month's {n_users} users")
    stable = np.random.default_rng([seed, _BLOCK_TAG, 0, block])
    rng = np.random.default_rng([seed, _BLOCK_TAG, month + 1, block])
    return _month_tables(month, user_ids(seed, start, count), stable, rng)


class _HashedFile:
    """A file written in pieces, with its size and SHA-256 kept as it grows."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self._digest.update(data)
        self.size += len(data)

    def close(self) -> dict[str, int | str]:
        self._handle.close()
        return {"bytes": self.size, "sha256": self._digest.hexdigest()}


def part_bounds(n_users: int, parts: int) -> list[tuple[int, int]]:
    """[start, end) of each part's users: sizes differ by at most one."""
    return [(p * n_users // parts, (p + 1) * n_users // parts) for p in range(parts)]


def write_partitioned_month(out_dir: Path, month: int, n_users: int, parts: int,
                            seed: int = DEFAULT_SEED) -> Path:
    """Write ``<out_dir>/month_NNN/<table>/part-NNNNN.csv`` for every table and part, then
    ``_MANIFEST.json`` (every part with its size and SHA-256); return the month's folder.
    At most one block of users and one part's open files are held at a time."""
    if n_users < 1:
        raise ValueError("n_users must be at least 1")
    if not 1 <= parts <= n_users:
        raise ValueError(f"parts must be between 1 and the number of users ({n_users}), not {parts}")
    name = month_name(month)
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict[str, int | str]] = {}
    cached: tuple[int, dict[str, pd.DataFrame]] | None = None
    for index, (start, end) in enumerate(part_bounds(n_users, parts)):
        files = {table: _HashedFile(folder / part_name(table, index)) for table in MONTH_FILES}
        header = True
        position = start
        while position < end:
            block = position // BLOCK_USERS
            if cached is None or cached[0] != block:
                cached = (block, block_tables(month, block, n_users, seed))
            stop = min(end, (block + 1) * BLOCK_USERS)
            rows = slice(position - block * BLOCK_USERS, stop - block * BLOCK_USERS)
            for table, handle in files.items():
                chunk = cached[1][table].iloc[rows]
                handle.write(chunk.to_csv(index=False, header=header, lineterminator="\n").encode("utf-8"))
            header = False
            position = stop
        for table, handle in files.items():
            entries[part_name(table, index)] = handle.close()
    manifest = {"month": name, "files": dict(sorted(entries.items())),
                "generator": {"seed": seed, "n_users": n_users, "parts": parts}}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder
