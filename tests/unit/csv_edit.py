"""CSV editing helpers for the contract and feature tests (text in, text out)."""

from __future__ import annotations

import csv
import io


def read_rows(body: bytes) -> tuple[list[str], list[list[str]]]:
    """CSV bytes → (header, data rows) as text."""
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    return rows[0], rows[1:]


def write_rows(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def with_cell(body: bytes, column: str, row: int, value: str) -> bytes:
    """The CSV with one cell (data row ``row``, 0-based) replaced."""
    header, rows = read_rows(body)
    rows = [list(r) for r in rows]
    rows[row][header.index(column)] = value
    return write_rows(header, rows)


def replaced(files: dict[str, bytes], name: str, body: bytes | None) -> dict[str, bytes]:
    """A copy of the month with one file replaced (or removed when ``body`` is None)."""
    out = dict(files)
    if body is None:
        del out[name]
    else:
        out[name] = body
    return out
