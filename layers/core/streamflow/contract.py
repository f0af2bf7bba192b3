"""The month data contract: every file, column and value rule a month must meet.

``check_month`` turns raw CSV bytes into typed tables or a list of violations, each naming
the file (or the part of a partitioned table), the column and the rule, so a bad month is
rejected before any training with a message a person can act on. Parsing is done here (the CSV text rules: ``True``/``False``,
empty add-ons); value rules (ranges, categories, keys) are a pandera schema per table.
"""

from __future__ import annotations

import bisect
import codecs
import io
from dataclasses import asdict, dataclass, field

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from .parts import folder_of, group_files
from .violations import ContractError, Violation, check_sizes  # noqa: F401 - re-exported
from .schema import (
    BOOLEAN_COLUMNS,
    CATEGORIES,
    DATE_COLUMNS,
    FLOAT_COLUMNS,
    ID_COLUMN,
    INTEGER_COLUMNS,
    MONTH_FILES,
    NULLABLE_COLUMNS,
    TABLE_COLUMNS,
    TARGET,
)

_TRUE = {"True", "true", "TRUE"}
_FALSE = {"False", "false", "FALSE"}
ID_REGEX = r"^\d{4}-[A-Z]{5}$"
# Aggregate tables may omit users with no events (counts are 0); these may not.
REQUIRED_PER_USER = ("subscriptions.csv", "labels.csv")


@dataclass
class ContractResult:
    """The typed tables when the month is valid, else the violations found."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self, limit: int = 10) -> str:
        shown = "; ".join(str(v) for v in self.violations[:limit])
        more = len(self.violations) - limit
        return shown + (f"; and {more} more" if more > 0 else "")

    def as_dicts(self) -> list[dict[str, str]]:
        return [asdict(v) for v in self.violations]


def first_line(message: str, limit: int = 120) -> str:
    """The first line of a parser's message, cut to ``limit`` characters: an example, not a dump."""
    return message.splitlines()[0][:limit] if message else ""


def _first_bad(raw: pd.Series, bad_mask: pd.Series) -> str:
    """Where the first bad cell is and what it holds (callers pass a mask with one at least)."""
    row = int(bad_mask.idxmax())
    return f"row {row + 2} value {raw.iloc[row]!r}"


def _parse_column(file: str, column: str, raw: pd.Series) -> tuple[pd.Series, Violation | None]:
    """Text → typed values with the CSV rules; the first bad cell is the example."""
    text = raw.str.strip()
    empty = text == ""
    if column in NULLABLE_COLUMNS:
        allowed_empty = empty
    else:
        allowed_empty = pd.Series(False, index=raw.index)
        if empty.any():
            return raw, Violation(file, column, "must not be empty", _first_bad(raw, empty))
    if column in BOOLEAN_COLUMNS:
        is_true, is_false = text.isin(_TRUE), text.isin(_FALSE)
        bad = ~(is_true | is_false | allowed_empty)
        if bad.any():
            return raw, Violation(file, column, "must be a boolean True/False", _first_bad(raw, bad))
        values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        values[is_true] = True
        values[is_false] = False
        return values, None
    if column in INTEGER_COLUMNS or column in FLOAT_COLUMNS:
        numbers = pd.to_numeric(text.where(~empty), errors="coerce")
        bad = numbers.isna() & ~allowed_empty
        if bad.any():
            return raw, Violation(file, column, "must be a number", _first_bad(raw, bad))
        if column in INTEGER_COLUMNS:
            fractional = (numbers % 1 != 0) & ~allowed_empty
            if fractional.any():
                return raw, Violation(file, column, "must be a whole number", _first_bad(raw, fractional))
            return numbers.astype("int64"), None
        return numbers.astype("float64"), None
    if column in DATE_COLUMNS:
        dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        bad = dates.isna()
        if bad.any():
            return raw, Violation(file, column, "must be a date YYYY-MM-DD", _first_bad(raw, bad))
        return dates, None
    return text, None


def _value_schema(file: str) -> pa.DataFrameSchema:
    """Ranges, categories and keys of one typed table."""
    columns: dict[str, pa.Column] = {}
    for column in TABLE_COLUMNS[file]:
        checks: list[pa.Check] = []
        if column == ID_COLUMN:
            checks.append(pa.Check.str_matches(ID_REGEX, error="must look like 7590-VHVEG"))
        elif column in INTEGER_COLUMNS or column in FLOAT_COLUMNS:
            checks.append(pa.Check.ge(0, error="must not be negative"))
        elif column in CATEGORIES:
            allowed = ", ".join(CATEGORIES[column])
            checks.append(pa.Check.isin(CATEGORIES[column], error=f"must be one of {allowed}"))
        columns[column] = pa.Column(checks=checks, nullable=column in NULLABLE_COLUMNS, unique=column == ID_COLUMN)
    # The frame validated holds exactly these columns (parse_table checked the header), so
    # pandera's column presence and strictness options have nothing to decide.
    return pa.DataFrameSchema(columns)


def _schema_violations(file: str, frame: pd.DataFrame) -> list[Violation]:
    try:
        _value_schema(file).validate(frame, lazy=True)
        return []
    except SchemaErrors as errors:
        found: dict[tuple[str, str], Violation] = {}
        for _, case in errors.failure_cases.iterrows():
            column, check = str(case["column"]), str(case["check"])
            rule = "user_id must be unique" if check == "field_uniqueness" else check
            key = (column, rule)
            if key not in found:
                # every check here is a column's, so every failure case has its row
                found[key] = Violation(file, column, rule, f"row {int(case['index']) + 2} value {case['failure_case']!r}")
        return list(found.values())


def parse_table(file: str, body: bytes) -> tuple[pd.DataFrame | None, list[Violation]]:
    """One CSV file → typed table, or the violations that stop it."""
    try:
        body.decode("utf-8-sig")  # a check only: pandas reads the bytes (a str and StringIO's
    except UnicodeDecodeError as exc:  # 4-byte-a-character buffer were 5× the file in memory)
        return None, [Violation(file, "", "must be UTF-8 text", f"byte {exc.start}")]
    if not body.removeprefix(codecs.BOM_UTF8).strip():
        return None, [Violation(file, "", "must not be empty")]
    try:
        raw = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig", dtype=str, keep_default_na=False,
                          skipinitialspace=False)
    except (pd.errors.ParserError, ValueError) as exc:
        return None, [Violation(file, "", "must be a CSV file", first_line(str(exc)))]
    if not isinstance(raw.index, pd.RangeIndex):
        # pandas turns a first column into the index when rows have one field more than the header
        return None, [Violation(file, "", "rows must have as many fields as the header", "trailing comma?")]
    expected = TABLE_COLUMNS[file]
    violations = [Violation(file, c, "required column missing") for c in expected if c not in raw.columns]
    violations += [Violation(file, str(c), "unknown column") for c in raw.columns if c not in expected]
    if violations:
        return None, violations
    if raw.empty:
        return None, [Violation(file, "", NO_ROWS)]
    typed: dict[str, pd.Series] = {}
    for column in expected:
        values, problem = _parse_column(file, column, raw[column])
        if problem:
            violations.append(problem)
        typed[column] = values
    if violations:
        return None, violations
    frame = pd.DataFrame(typed)[expected]
    violations = _schema_violations(file, frame)
    return (frame if not violations else None), violations


class _Origins:
    """Which file each row of a table came from: the table itself, or one of its parts."""

    def __init__(self) -> None:
        self._parts: dict[str, tuple[list[str], list[int]]] = {}  # table → (parts, first row of each)

    def add(self, table: str, parts: list[str], lengths: list[int]) -> None:
        starts = [0]
        for length in lengths[:-1]:
            starts.append(starts[-1] + length)
        self._parts[table] = (parts, starts)

    def label(self, table: str) -> str:
        """The table's name in a violation that no single row explains."""
        return f"{folder_of(table)}/" if table in self._parts else table

    def row(self, table: str, index: int) -> tuple[str, int]:
        """(file, row number in that file as a person counts it, header = row 1) of a row."""
        if table not in self._parts:
            return table, index + 2
        parts, starts = self._parts[table]
        at = bisect.bisect_right(starts, index) - 1
        return parts[at], index - starts[at] + 2


def _cross_table_violations(tables: dict[str, pd.DataFrame], origins: _Origins) -> list[Violation]:
    """Keys across tables, and labels fit to train on."""
    violations: list[Violation] = []
    users = tables.get("users.csv")
    if users is not None:
        known = set(users[ID_COLUMN])
        for file in REQUIRED_PER_USER:
            frame = tables.get(file)
            if frame is not None:
                missing = users.loc[~users[ID_COLUMN].isin(set(frame[ID_COLUMN])), ID_COLUMN]
                if not missing.empty:
                    violations.append(Violation(origins.label(file), ID_COLUMN,
                                                "every user in users.csv needs a row here",
                                                f"missing {missing.iloc[0]!r}"))
        for file, frame in tables.items():  # users.csv too: its own ids are all known, no exception needed
            unknown = frame.loc[~frame[ID_COLUMN].isin(known), ID_COLUMN]
            if not unknown.empty:
                where, row = origins.row(file, int(unknown.index[0]))
                violations.append(Violation(where, ID_COLUMN, "user_id must exist in users.csv",
                                            f"row {row} value {unknown.iloc[0]!r}"))
    labels = tables.get("labels.csv")
    if labels is not None and labels[TARGET].nunique() < 2:
        violations.append(Violation(origins.label("labels.csv"), TARGET, "must contain both classes (True and False)"))
    return violations


NO_ROWS = "must have at least one data row"


def _parse_parts(table: str, parts: list[str], files: dict[str, bytes], origins: _Origins,
                 header_only_parts: bool = False) -> tuple[pd.DataFrame | None, list[Violation]]:
    """A table given in parts: each part checked on its own (violations name the part),
    then the rows together, so a user_id repeated in two parts is found too. With
    ``header_only_parts`` (a shard: one part per uploaded file, most of them with rows) a
    part may hold only its header; the table still needs a row."""
    frames: list[pd.DataFrame] = []
    lengths: list[int] = []  # every part's rows (0 for a header-only one): where a row came from
    violations: list[Violation] = []
    for part in parts:
        frame, problems = parse_table(table, files[part])
        if header_only_parts and [v.rule for v in problems] == [NO_ROWS]:
            lengths.append(0)
            continue
        violations += [Violation(part, v.column, v.rule, v.example) for v in problems]
        if frame is not None:
            frames.append(frame)
            lengths.append(len(frame))
    if violations:
        return None, violations
    if not frames:  # every part header-only
        return None, [Violation(parts[0], "", NO_ROWS)]
    whole = pd.concat(frames, ignore_index=True)
    origins.add(table, parts, lengths)
    repeated = whole[ID_COLUMN].duplicated()
    if repeated.any():
        index = int(repeated.idxmax())
        part, row = origins.row(table, index)
        return None, [Violation(part, ID_COLUMN, "user_id must be unique",
                                f"row {row} value {whole[ID_COLUMN].iloc[index]!r}, also in an earlier row or part")]
    return whole, []


def check_month(files: dict[str, bytes], header_only_parts: bool = False) -> ContractResult:
    """Check a whole month given as ``{file name: bytes}``: each table one CSV
    (``users.csv``) or numbered parts (``users/part-00000.csv`` …, see ``parts``).
    ``header_only_parts``: a shard's check (see ``_parse_parts``)."""
    result = ContractResult()
    grouped, unknown, layout = group_files(files)
    broken = {v.file for v in layout}
    for name in MONTH_FILES:
        if name not in grouped and name not in broken and f"{folder_of(name)}/" not in broken:
            result.violations.append(Violation(name, "", "required file missing"))
    result.violations.extend(layout)
    for name in unknown:
        result.violations.append(Violation(name, "", "unknown file"))
    origins = _Origins()
    for name in MONTH_FILES:
        if name not in grouped:
            continue
        if grouped[name] == [name]:
            frame, problems = parse_table(name, files[name])
        else:
            frame, problems = _parse_parts(name, grouped[name], files, origins, header_only_parts)
        result.violations.extend(problems)
        if frame is not None:
            result.tables[name] = frame
    if not result.violations:
        result.violations.extend(_cross_table_violations(result.tables, origins))
    if result.violations:
        result.tables = {}
    return result
