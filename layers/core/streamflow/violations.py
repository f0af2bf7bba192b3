"""A broken rule of the month data contract, and the error that carries them.

Pure (no pandas): Ingest and the quarantine name violations without reading a table, and
ship as zip functions without pandas (see template.yaml). ``contract`` checks the tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (file, column) and what (rule, example)."""

    file: str
    column: str
    rule: str
    example: str = ""

    def to_json(self) -> dict[str, str]:
        """As reports and a Map's results carry it (``_REJECTION.json``, a shard's summary)."""
        return {"file": self.file, "column": self.column, "rule": self.rule, "example": self.example}

    @classmethod
    def from_json(cls, value: dict[str, str]) -> "Violation":
        """``to_json``'s inverse; other keys (a shard's ``shard``) are ignored."""
        return cls(value["file"], value["column"], value["rule"], value.get("example", ""))

    def __str__(self) -> str:
        where = f"{self.file}:{self.column}" if self.column else self.file
        tail = f" (e.g. {self.example})" if self.example else ""
        return f"{where}: {self.rule}{tail}"


class ContractError(ValueError):
    """Raised by callers that need an exception; carries the violations."""

    def __init__(self, month: str, violations: list[Violation]):
        self.month = month
        self.violations = violations
        shown = "; ".join(str(v) for v in violations[:3])
        more = f"; and {len(violations) - 3} more (see _REJECTION.json)" if len(violations) > 3 else ""
        super().__init__(f"{month} breaks the data contract: {shown}{more}")


def check_sizes(sizes: dict[str, int], max_file_bytes: int) -> list[Violation]:
    """Files over the configured limit are refused before anything reads them."""
    return [
        Violation(name, "", f"file larger than the limit of {max_file_bytes} bytes", f"{size} bytes")
        for name, size in sizes.items()
        if size > max_file_bytes
    ]
